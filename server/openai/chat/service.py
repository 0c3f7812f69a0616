"""Chat completions: messages are rendered with the model's chat template, then generated from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from server.engine.protocol import GenerationOutput, TokenLogprob
from server.errors import bad_request
from server.openai.generation import EngineRequest, GenerationService
from server.openai.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    DeltaMessage,
    TokenLogprobEntry,
    TopLogprob,
    usage,
)


class ChatService:
    def __init__(self, generation: GenerationService) -> None:
        self.generation = generation

    def prepare(self, request: ChatCompletionRequest) -> EngineRequest:
        self.generation.check_model(request.model)
        if request.top_logprobs is not None and not request.logprobs:
            raise bad_request("top_logprobs needs logprobs=true", param="top_logprobs")
        engine = self.generation.engine
        text = engine.render_chat([{"role": m.role, "content": m.text()}
                                   for m in request.messages])
        # The template already holds any special tokens the model expects.
        ids = engine.encode(text, add_special_tokens=False)
        limit_param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        return self.generation.build(
            request, ids, prompt_param="messages", max_tokens=request.token_limit(),
            max_tokens_param=limit_param,
            logprobs=(request.top_logprobs or 0) if request.logprobs else None,
            logprobs_param="top_logprobs", id_prefix="chatcmpl",
        )

    async def complete(self, request: ChatCompletionRequest,
                       job: EngineRequest) -> ChatCompletionResponse:
        result = await self.generation.run(job)
        choices = [
            ChatChoice(index=i, message=AssistantMessage(content=c.text),
                       finish_reason=c.finish_reason,
                       logprobs=_logprobs(c.logprobs) if request.logprobs else None)
            for i, c in enumerate(result.choices)
        ]
        return ChatCompletionResponse(id=job.request_id, model=request.model, choices=choices,
                                      usage=usage(result.prompt_tokens, result.completion_tokens))

    async def stream(self, request: ChatCompletionRequest,
                     job: EngineRequest) -> AsyncIterator[dict]:
        return self._chunks(request, job, await self.generation.start(job))

    async def _chunks(self, request: ChatCompletionRequest, job: EngineRequest,
                      outputs: AsyncIterator[GenerationOutput]) -> AsyncIterator[dict]:
        # As OpenAI does: the role comes first, alone, once per choice.
        yield _chunk(job, request, [ChatChunkChoice(
            index=i, delta=DeltaMessage(role="assistant", content="")) for i in range(job.params.n)])
        prompt_tokens, completion_tokens = len(job.prompt_token_ids), 0
        async for out in outputs:
            prompt_tokens = len(out.prompt_token_ids)
            for delta in out.choices:
                completion_tokens += len(delta.token_ids)
                yield _chunk(job, request, [ChatChunkChoice(
                    index=delta.index, delta=DeltaMessage(content=delta.text),
                    finish_reason=delta.finish_reason,
                    logprobs=_logprobs(delta.logprobs or ()) if request.logprobs else None)])
        if request.include_usage:
            yield _chunk(job, request, [], usage(prompt_tokens, completion_tokens))


def _chunk(job: EngineRequest, request: ChatCompletionRequest, choices, usage_=None) -> dict:
    body = ChatCompletionChunk(id=job.request_id, model=request.model, choices=choices,
                               usage=usage_).model_dump(mode="json")
    if not request.include_usage:
        del body["usage"]
    return body


def _logprobs(positions: Sequence[TokenLogprob]) -> ChatLogprobs:
    return ChatLogprobs(content=[
        TokenLogprobEntry(
            token=p.token, logprob=p.logprob, bytes=list(p.token.encode()),
            top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(t.encode()))
                          for t, lp in p.top.items()],
        )
        for p in positions
    ])
