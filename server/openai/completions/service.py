"""Completions: the prompt goes to the engine as it is (text or token ids)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from search.problem import SearchProblem
from engine.protocol import GenerationOutput, TokenLogprob
from server.openai.generation import EngineRequest, GenerationService
from server.openai.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
)
from server.reasoning.response import plain_usage, reasoning_object, search_usage
from server.reasoning.service import Decision, ReasoningService


class CompletionService:
    def __init__(self, generation: GenerationService, reasoning: ReasoningService) -> None:
        self.generation = generation
        self.reasoning = reasoning

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

    def problem(self, request: CompletionRequest) -> SearchProblem:
        """Only for a text prompt: token ids make `decide` answer in a single pass."""
        delimiter = request.reasoning.step_delimiter if request.reasoning else "\n"
        return SearchProblem(prompt=request.prompt, question=request.prompt.strip(),
                             delimiter=delimiter)

    async def decide(self, request: CompletionRequest) -> Decision:
        single_pass = self.reasoning.single_pass_feature(
            request, logprobs=request.logprobs is not None,
            prompt_logprobs=request.prompt_logprobs is not None,
            prompt=not isinstance(request.prompt, str))
        problem = self.problem(request) if single_pass is None else None
        return await self.reasoning.decide(request, problem, single_pass)

    async def complete(self, request: CompletionRequest, job: EngineRequest,
                       decision: Decision) -> CompletionResponse:
        if decision.strategy != "greedy":
            return await self._search(request, job, decision)
        result = await self.generation.run(job)
        choices = [
            CompletionChoice(index=i, text=c.text, finish_reason=c.finish_reason,
                             logprobs=_logprobs(c.logprobs) if request.logprobs is not None else None,
                             prompt_logprobs=result.prompt_logprobs)
            for i, c in enumerate(result.choices)
        ]
        return CompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=plain_usage(result.prompt_tokens, result.completion_tokens, decision),
            reasoning=reasoning_object(decision))

    async def _search(self, request: CompletionRequest, job: EngineRequest,
                      decision: Decision) -> CompletionResponse:
        result = await self.reasoning.search(
            decision, decision.problem, request.model,
            self.reasoning.params(decision, request, job.params.max_tokens))
        choices = [CompletionChoice(index=i, text=a.text, finish_reason=a.finish_reason)
                   for i, a in enumerate(result.answers)]
        return CompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=search_usage(len(job.prompt_token_ids), decision, result),
            reasoning=reasoning_object(decision, result))

    async def stream(self, request: CompletionRequest, job: EngineRequest,
                     decision: Decision) -> AsyncIterator[dict]:
        if decision.strategy != "greedy":
            return self._search_chunks(request, job, decision)
        return self._chunks(request, job, decision, await self.generation.start(job))

    async def _search_chunks(self, request: CompletionRequest, job: EngineRequest,
                             decision: Decision) -> AsyncIterator[dict]:
        """Completions have no reasoning channel: the answers come once the search ends."""
        response = await self._search(request, job, decision)
        for choice in response.choices:
            yield _chunk(job, request, [choice])
        yield _chunk(job, request, [], response.usage, reasoning=response.reasoning)

    async def _chunks(self, request: CompletionRequest, job: EngineRequest, decision: Decision,
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
        yield _chunk(job, request, [], plain_usage(prompt_tokens, completion_tokens, decision),
                     reasoning=reasoning_object(decision))


def _chunk(job: EngineRequest, request: CompletionRequest, choices, usage_=None,
           reasoning: dict | None = None) -> dict:
    """One SSE chunk. The closing one (no choices) carries the reasoning object, and the usage
    when the client asked for it (then every chunk has a `usage` key, null until the last)."""
    body = CompletionResponse(id=job.request_id, model=request.model, choices=choices,
                              usage=usage_, reasoning=reasoning).model_dump(mode="json")
    if not request.include_usage:
        del body["usage"]
    if reasoning is None:
        del body["reasoning"]
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
