"""What chat and completions share: validate, decide the strategy, then either one engine pass
or a search, whole or streamed. Each endpoint says how its prompt, search problem and response
are shaped; this base owns the single-pass / search fork, so both endpoints take the same path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from fastapi import Response
from pydantic import BaseModel

from engine.protocol import GenerationOutput
from search.problem import SearchProblem, SearchResult
from server.openai.generation import EngineRequest, GenerationService, Result
from server.openai.protocol import SamplingRequest
from server.openai.streaming import event_stream
from server.reasoning.response import STRATEGY_HEADER
from server.reasoning.service import Decision, ReasoningService

RequestT = TypeVar("RequestT", bound=SamplingRequest)


class Serving(ABC, Generic[RequestT]):
    def __init__(self, generation: GenerationService, reasoning: ReasoningService) -> None:
        self.generation = generation
        self.reasoning = reasoning

    # --- what each endpoint defines -----------------------------------------------------------

    @abstractmethod
    def prepare(self, request: RequestT) -> EngineRequest:
        """The single-pass engine request: the prompt's token ids and checked sampling params."""

    @abstractmethod
    def problem(self, request: RequestT) -> SearchProblem:
        """What a search works on: the endpoint's prompt and question (built only when a search
        is possible; `ReasoningService.problem` adds what every search takes from the
        request)."""

    @abstractmethod
    def single_pass_feature(self, request: RequestT) -> str | None:
        """The first field the request sets that only a single pass can honour."""

    @abstractmethod
    def single_response(self, request: RequestT, job: EngineRequest, decision: Decision,
                        result: Result) -> BaseModel:
        ...

    @abstractmethod
    def search_response(self, request: RequestT, job: EngineRequest, decision: Decision,
                        result: SearchResult) -> BaseModel:
        ...

    @abstractmethod
    def single_chunks(self, request: RequestT, job: EngineRequest, decision: Decision,
                      outputs: AsyncIterator[GenerationOutput]) -> AsyncIterator[dict]:
        ...

    @abstractmethod
    def search_chunks(self, request: RequestT, job: EngineRequest,
                      decision: Decision) -> AsyncIterator[dict]:
        ...

    # --- the shared path ----------------------------------------------------------------------

    async def serve(self, request: RequestT, response: Response):
        """The HTTP answer: an event stream, or the whole response with the strategy header."""
        job = self.prepare(request)
        decision = await self.decide(request, job)
        headers = {STRATEGY_HEADER: decision.strategy}
        if request.stream:
            return event_stream(await self.stream(request, job, decision), headers)
        response.headers.update(headers)
        return await self.complete(request, job, decision)

    async def decide(self, request: RequestT, job: EngineRequest) -> Decision:
        single_pass = self.single_pass_feature(request)
        problem = None
        if single_pass is None:
            problem = self.reasoning.problem(self.problem(request), request,
                                             job.prompt_token_ids)
        return await self.reasoning.decide(request, problem, single_pass)

    async def complete(self, request: RequestT, job: EngineRequest,
                       decision: Decision) -> BaseModel:
        if is_search(decision):
            return self.search_response(request, job, decision,
                                        await self.search(request, job, decision))
        return self.single_response(request, job, decision, await self.generation.run(job))

    async def stream(self, request: RequestT, job: EngineRequest,
                     decision: Decision) -> AsyncIterator[dict]:
        if is_search(decision):
            return self.search_chunks(request, job, decision)
        # started here, so that a refusal is a status code, not an error event in a 200 stream
        return self.single_chunks(request, job, decision, await self.generation.start(job))

    async def search(self, request: RequestT, job: EngineRequest, decision: Decision,
                     problem: SearchProblem | None = None) -> SearchResult:
        """The decided strategy's search on `problem` (the decision's unless given)."""
        return await self.reasoning.search(
            decision, problem or decision.problem, request.model,
            self.reasoning.params(decision, request, job.params.max_tokens))


def is_search(decision: Decision) -> bool:
    return decision.strategy != "greedy"


def chunk_body(chunk: BaseModel, request: SamplingRequest, has_reasoning: bool) -> dict:
    """One SSE chunk as JSON. The closing one (no choices) carries the reasoning object, and the
    usage when the client asked for it (then every chunk has a `usage` key, null until the
    last)."""
    body = chunk.model_dump(mode="json")
    if not request.include_usage:
        del body["usage"]
    if not has_reasoning:
        del body["reasoning"]
    return body
