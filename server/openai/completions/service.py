"""Completions: the prompt goes to the engine as it is (text or token ids)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from server.engine.protocol import GenerationOutput, TokenLogprob
from server.openai.generation import EngineRequest, GenerationService
from server.openai.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    usage,
)


class CompletionService:
    def __init__(self, generation: GenerationService) -> None:
        self.generation = generation

    def prepare(self, request: CompletionRequest) -> EngineRequest:
        self.generation.check_model(request.model)
        prompt = request.prompt
        # Like vLLM's completions endpoint: text is tokenized with the tokenizer's special tokens.
        ids = self.generation.engine.encode(prompt) if isinstance(prompt, str) else list(prompt)
        return self.generation.build(
            request, ids, prompt_param="prompt", max_tokens=request.max_tokens,
            max_tokens_param="max_tokens", logprobs=request.logprobs, logprobs_param="logprobs",
            id_prefix="cmpl", prompt_logprobs=request.prompt_logprobs,
        )

    async def complete(self, request: CompletionRequest, job: EngineRequest) -> CompletionResponse:
        result = await self.generation.run(job)
        choices = [
            CompletionChoice(index=i, text=c.text, finish_reason=c.finish_reason,
                             logprobs=_logprobs(c.logprobs) if request.logprobs is not None else None,
                             prompt_logprobs=result.prompt_logprobs)
            for i, c in enumerate(result.choices)
        ]
        return CompletionResponse(id=job.request_id, model=request.model, choices=choices,
                                  usage=usage(result.prompt_tokens, result.completion_tokens))

    async def stream(self, request: CompletionRequest,
                     job: EngineRequest) -> AsyncIterator[dict]:
        return self._chunks(request, job, await self.generation.start(job))

    async def _chunks(self, request: CompletionRequest, job: EngineRequest,
                      outputs: AsyncIterator[GenerationOutput]) -> AsyncIterator[dict]:
        prompt_tokens, completion_tokens = len(job.prompt_token_ids), 0
        offsets = [0] * job.params.n
        async for out in outputs:
            prompt_tokens = len(out.prompt_token_ids)
            for delta in out.choices:
                completion_tokens += len(delta.token_ids)
                logprobs = None
                if request.logprobs is not None:
                    logprobs = _logprobs(delta.logprobs or (), offsets[delta.index])
                offsets[delta.index] += len(delta.text)
                yield _chunk(job, request, [CompletionChoice(
                    index=delta.index, text=delta.text, logprobs=logprobs,
                    finish_reason=delta.finish_reason)])
        if request.include_usage:
            yield _chunk(job, request, [], usage(prompt_tokens, completion_tokens))


def _chunk(job: EngineRequest, request: CompletionRequest, choices, usage_=None) -> dict:
    body = CompletionResponse(id=job.request_id, model=request.model, choices=choices,
                              usage=usage_).model_dump(mode="json")
    if not request.include_usage:
        del body["usage"]
    return body


def _logprobs(positions: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    out = CompletionLogprobs()
    for position in positions:
        out.tokens.append(position.token)
        out.token_logprobs.append(position.logprob)
        out.top_logprobs.append(position.top)
        out.text_offset.append(offset)
        offset += len(position.token)
    return out
