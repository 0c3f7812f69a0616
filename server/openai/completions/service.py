"""Completions: the prompt goes to the engine as it is (text or token ids). Completions have no
reasoning channel: a streamed search sends its answers once the search ends."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from engine.protocol import GenerationOutput, TokenLogprob
from search.problem import SearchProblem, SearchResult
from server.errors import bad_request
from server.openai.generation import EngineRequest, Result
from server.openai.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
)
from server.openai.serving import Serving, chunk_body, filter_reason
from server.reasoning.response import plain_usage, reasoning_object, search_usage
from server.reasoning.service import Decision


class CompletionService(Serving[CompletionRequest]):
    def prepare(self, request: CompletionRequest) -> EngineRequest:
        self.generation.check_model(request.model)
        prompt = request.prompt
        # Like vLLM's completions endpoint: text is tokenized with the tokenizer's special tokens.
        ids = self.generation.engine.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if request.echo and request.stream:
            raise bad_request("echo is answered whole, not streamed; drop stream (or echo)",
                              param="echo")
        prompt_logprobs = request.prompt_logprobs
        echo_logprobs = request.echo and request.logprobs is not None
        if echo_logprobs:  # the echoed tokens' logprobs
            prompt_logprobs = max(prompt_logprobs or 0, request.logprobs)
        # max_tokens 0 (with echo): the engine always samples one token, which is dropped
        max_tokens = 1 if request.max_tokens == 0 else request.max_tokens
        return self.generation.build(
            request, ids, prompt_param="prompt", max_tokens=max_tokens,
            max_tokens_param="max_tokens", logprobs=request.logprobs, logprobs_param="logprobs",
            id_prefix="cmpl", prompt_logprobs=prompt_logprobs,
            name_prompt_tokens=echo_logprobs,
        )

    def problem(self, request: CompletionRequest) -> SearchProblem:
        """Only for a text prompt: token ids are a single-pass feature."""
        return SearchProblem(prompt=request.prompt, question=request.prompt.strip())

    def single_pass_feature(self, request: CompletionRequest) -> str | None:
        return self.reasoning.single_pass_feature(
            request, logprobs=request.logprobs is not None,
            prompt_logprobs=request.prompt_logprobs is not None, echo=request.echo,
            prompt=not isinstance(request.prompt, str))

    def single_response(self, request: CompletionRequest, job: EngineRequest,
                        decision: Decision, result: Result) -> CompletionResponse:
        if request.echo:
            result = self._echoed(request, job, result)
        choices = [
            CompletionChoice(index=i, text=c.text, finish_reason=c.finish_reason,
                             logprobs=_logprobs(c.logprobs) if request.logprobs is not None else None,
                             prompt_logprobs=(result.prompt_logprobs
                                              if request.prompt_logprobs is not None else None),
                             content_filter_reason=c.filter_reason)
            for i, c in enumerate(result.choices)
        ]
        return CompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=plain_usage(result.prompt_tokens, result.completion_tokens, decision),
            reasoning=reasoning_object(decision))

    def _echoed(self, request: CompletionRequest, job: EngineRequest, result: Result) -> Result:
        """Each choice's text and logprobs after the prompt's, as OpenAI's `echo` has them; with
        max_tokens 0 the prompt's alone (the one token the engine sampled is dropped)."""
        ids = job.prompt_token_ids
        prompt = request.prompt if isinstance(request.prompt, str) else \
            self.generation.engine.decode(ids)
        positions = list(result.prompt_token_logprobs or [None] * len(ids))
        first = self.generation.engine.decode(ids[:1])
        echoed = [TokenLogprob(token=first, logprob=None, top=None)]  # type: ignore[arg-type]
        echoed += [p if p is not None else TokenLogprob(token="", logprob=None, top=None)
                   for p in positions[1:]]
        generate = request.max_tokens != 0
        choices = [dataclasses.replace(
            c, text=prompt + (c.text if generate else ""),
            token_count=c.token_count if generate else 0,
            logprobs=echoed + (c.logprobs if generate else []),
            finish_reason=c.finish_reason if generate else "length")
            for c in result.choices]
        return dataclasses.replace(result, choices=choices)

    def search_response(self, request: CompletionRequest, job: EngineRequest,
                        decision: Decision, result: SearchResult) -> CompletionResponse:
        choices = [CompletionChoice(index=i, text=a.text, finish_reason=a.finish_reason,
                                    content_filter_reason=a.filter_reason)
                   for i, a in enumerate(result.answers)]
        return CompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=search_usage(len(job.prompt_token_ids), decision, result),
            reasoning=reasoning_object(decision, result))

    async def search_chunks(self, request: CompletionRequest, job: EngineRequest,
                            decision: Decision) -> AsyncIterator[dict]:
        response = self.search_response(request, job, decision,
                                        await self.search(request, job, decision))
        for choice in response.choices:
            yield _chunk(job, request, [choice])
        yield _chunk(job, request, [], response.usage, reasoning=response.reasoning)

    async def single_chunks(self, request: CompletionRequest, job: EngineRequest,
                            decision: Decision, outputs: AsyncIterator[GenerationOutput]
                            ) -> AsyncIterator[dict]:
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
                    finish_reason=delta.finish_reason,
                    content_filter_reason=filter_reason(delta))])
        yield _chunk(job, request, [], plain_usage(prompt_tokens, completion_tokens, decision),
                     reasoning=reasoning_object(decision))


def _chunk(job: EngineRequest, request: CompletionRequest, choices, usage_=None,
           reasoning: dict | None = None) -> dict:
    return chunk_body(CompletionResponse(id=job.request_id, model=request.model, choices=choices,
                                         usage=usage_, reasoning=reasoning),
                      request, has_reasoning=reasoning is not None)


def _logprobs(positions: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    out = CompletionLogprobs()
    for position in positions:
        out.tokens.append(position.token)
        out.token_logprobs.append(position.logprob)
        out.top_logprobs.append(position.top)
        out.text_offset.append(offset)
        offset += len(position.token)
    return out
