"""What chat and completions share: validate, decide the strategy, then either one engine pass
or a search, whole or streamed. Each endpoint says how its prompt, search problem and response
are shaped; this base owns the single-pass / search fork, so both endpoints take the same path,
and so does every answer: admission (server/admission/), the request's deadline, and the
safety policy of the caller's API key and `user` (server/safety.py), and a confidence
(`reasoning.confidence`: ReasoningService.confidence), below the request's `abstain_below` the
answer withheld: its text replaced by the server's --abstain-message, finish_reason unchanged.
A streamed single pass that may abstain is held back until its confidence is known, then sent
whole in one delta per choice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from engine.protocol import Choice, GenerationOutput
from search.confidence import answer_signals
from search.problem import SearchProblem, SearchResult
from search.router import needs_difficulty
from server.admission import SEARCH, SINGLE, Admission, Shape, Ticket
from server.errors import APIError
from server.openai.generation import EngineRequest, GenerationService, Result
from server.openai.protocol import SamplingRequest
from server.openai.streaming import event_stream
from server.reasoning.options import ReasoningOptions
from server.reasoning.escalation import escalated_search
from server.reasoning.response import STRATEGY_HEADER
from server.reasoning.service import Decision, ReasoningService
from server.reasoning.swarm import swarm_search
from server.safety import AnswerFilter

RequestT = TypeVar("RequestT", bound=SamplingRequest)


class Serving(ABC, Generic[RequestT]):
    def __init__(self, generation: GenerationService, reasoning: ReasoningService,
                 admission: Admission | None = None, safety: AnswerFilter | None = None) -> None:
        self.generation = generation
        self.reasoning = reasoning
        self.admission = admission or Admission(reasoning.settings)
        self.safety = safety or AnswerFilter(None, reasoning.settings.safety_match_window)

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

    async def serve(self, request: RequestT):
        """The HTTP answer: an event stream, or the whole response with the strategy header."""
        strategy, answer = await self.answer(request, self.prepare(request))
        headers = {STRATEGY_HEADER: strategy}
        if request.stream:
            return event_stream(answer, headers)
        return json_response(answer, headers)

    async def answer(self, request: RequestT, job: EngineRequest
                     ) -> tuple[str, BaseModel | AsyncIterator[dict]]:
        """The strategy decided, and the whole response or (streaming) its chunks. The request
        holds its admission ticket until its last chunk is read (or the chunks are dropped)."""
        ticket = self.admission.ticket()
        streaming = False
        try:
            decision = await self.admit(request, job, ticket)
            if not is_search(decision):
                job = self.generation.single_pass(request, job)
            if request.stream:
                chunks = await _before(ticket, self.stream(request, job, decision))
                streaming = True
                return decision.strategy, _held(chunks, ticket, decision)
            body = await _before(ticket, self.complete(request, job, decision))
            ticket.spent(decision.spent_tokens)
            return decision.strategy, body
        finally:
            if not streaming:
                ticket.release()

    async def admit(self, request: RequestT, job: EngineRequest, ticket: Ticket) -> Decision:
        """Decides the strategy inside the right lane: a request routed by difficulty waits in
        the single-pass lane for its probe, and moves to the search lane if routed to one. Each
        lane counts the spend expected of the request's shape, capped at n x max_tokens for a
        single pass and at budget_tokens for a search."""
        single_cost = job.params.n * job.params.max_tokens
        single = {"n": job.params.n, "max_tokens": job.params.max_tokens}
        options = self.reasoning.options(request)
        if needs_difficulty(options.strategy, request.reasoning_effort):
            await ticket.enter(SINGLE, single_cost, Shape.of("auto", single))
        decision = await self.decide(request, job, options)
        if is_search(decision):
            params = self.reasoning.params(decision, request, job.params.max_tokens)
            shape = decision.strategy
            if decision.plan is not None:  # every stage within one budget
                params = dataclasses.replace(
                    params, budget_tokens=self.reasoning.escalation_budget(decision))
                shape = "escalate"
            ticket.spent(decision.probe_tokens)  # the probe's hold, if routed, is done
            await ticket.enter(SEARCH, params.budget_tokens or single_cost,
                               Shape.of(shape, vars(params)))
            # a search is anytime: it stops in time to answer before the request's deadline,
            # leaving a fifth of what is left for the round in flight and the answer's completion
            left = max(ticket.seconds_left() * 0.8, 0.001)
            decision.search_params = dataclasses.replace(
                params, timeout_s=min(params.timeout_s or left, left))
        elif ticket.lane is None:
            await ticket.enter(SINGLE, single_cost, Shape.of("greedy", single))
        return decision

    async def decide(self, request: RequestT, job: EngineRequest,
                     options: ReasoningOptions) -> Decision:
        single_pass = self.single_pass_feature(request)
        problem = None
        # a search, or a probe's, works on the problem; a request for greedy never needs it
        if single_pass is None and (options.strategy != "greedy" or options.context):
            problem = self.reasoning.problem(self.problem(request), request,
                                             job.prompt_token_ids)
            # the caller, for verifiers that judge by it (safety)
            problem = dataclasses.replace(problem, context=self.safety.context(
                problem.context, request.user))
        return await self.reasoning.decide(request, problem, single_pass, options)

    async def complete(self, request: RequestT, job: EngineRequest,
                       decision: Decision) -> BaseModel:
        if is_search(decision):
            return self.search_response(request, job, decision,
                                        await self.search(request, job, decision))
        result = await self.generation.run(job)
        decision.generated_tokens += result.completion_tokens
        for choice in result.choices:
            reason = self.safety.check(choice.text, request.user)
            if reason is not None:
                choice.text, choice.finish_reason, choice.filter_reason = \
                    "", "content_filter", reason
        self.single_confidence(request, job, decision)
        if decision.abstained:
            for choice in result.choices:
                if choice.filter_reason is None:
                    choice.text, choice.logprobs = self.reasoning.settings.abstain_message, []
        return self.single_response(request, job, decision, result)

    def single_confidence(self, request: RequestT, job: EngineRequest,
                          decision: Decision) -> None:
        """A single pass's confidence: the path signals of its first choice (no verifier
        scored it, nothing was voted)."""
        s = self.reasoning.settings
        signals = answer_signals(job.confidences.get(0, []), s.confidence_window,
                                 s.confidence_tail)
        self.reasoning.confidence(decision, request.model, signals, ())

    async def stream(self, request: RequestT, job: EngineRequest,
                     decision: Decision) -> AsyncIterator[dict]:
        if is_search(decision):
            return self.search_chunks(request, job, decision)
        # started here, so that a refusal is a status code, not an error event in a 200 stream
        outputs = _counted(await self.generation.start(job), decision)
        outputs = (self._held_back(request, job, decision, outputs)
                   if decision.options.abstain_below is not None
                   else self._confident(request, job, decision, outputs))
        return self.single_chunks(request, job, decision,
                                  self.safety.screen(outputs, job.params.n, request.user))

    async def search(self, request: RequestT, job: EngineRequest, decision: Decision,
                     problem: SearchProblem | None = None) -> SearchResult:
        """The decided strategy's search on `problem` (the decision's unless given); answers
        the caller's safety policy blocks come back empty, finish_reason content_filter."""
        params = decision.search_params or self.reasoning.params(decision, request,
                                                                 job.params.max_tokens)
        problem = problem or decision.problem
        if decision.plan is not None:
            result, verifiers = await escalated_search(self.reasoning, decision, problem,
                                                       request, params)
        elif decision.strategy == "swarm":
            result = await swarm_search(self.reasoning, decision, problem, request, params)
            self.reasoning.count_tokens(decision, result)
            verifiers = tuple(self.reasoning.search_verifiers(decision))
        else:
            result = await self.reasoning.search(decision, problem, request.model, params)
            verifiers = tuple(self.reasoning.search_verifiers(decision))
        decision.generated_tokens += result.stats.generated_tokens
        result.answers = [self.safety.screen_answer(answer, request.user)
                          for answer in result.answers]
        self.reasoning.confidence(decision, request.model, result.best.signals, verifiers)
        if decision.abstained:
            message = self.reasoning.settings.abstain_message
            result.answers = [answer if answer.filter_reason is not None
                              else dataclasses.replace(answer, text=message)
                              for answer in result.answers]
        return result

    async def _confident(self, request: RequestT, job: EngineRequest, decision: Decision,
                         outputs: AsyncIterator[GenerationOutput]
                         ) -> AsyncIterator[GenerationOutput]:
        """`outputs`; once they end, the answer's confidence (for the closing chunk)."""
        try:
            async for out in outputs:
                yield out
        finally:
            await outputs.aclose()
        self.single_confidence(request, job, decision)

    async def _held_back(self, request: RequestT, job: EngineRequest, decision: Decision,
                         outputs: AsyncIterator[GenerationOutput]
                         ) -> AsyncIterator[GenerationOutput]:
        """`outputs` as one output once they end, each choice's text replaced by the abstain
        message if the confidence is below the request's abstain_below."""
        merged: dict[int, Choice] = {}
        last: GenerationOutput | None = None
        try:
            async for out in outputs:
                last = out
                for c in out.choices:
                    merged[c.index] = c if c.index not in merged else _joined(merged[c.index], c)
        finally:
            await outputs.aclose()
        if last is None:
            return
        self.single_confidence(request, job, decision)
        choices = [merged[i] for i in sorted(merged)]
        if decision.abstained:
            message = self.reasoning.settings.abstain_message
            choices = [dataclasses.replace(c, text=message,
                                           logprobs=[] if c.logprobs is not None else None)
                       for c in choices]
        yield dataclasses.replace(last, choices=choices, finished=True)

    def blocked(self, request: RequestT, text: str) -> bool:
        """Whether the caller's safety policy blocks `text` (a search's progress, say)."""
        return self.safety.check(text, request.user) is not None


async def _before(ticket: Ticket, work):
    """`work`, cut off at the request's deadline (504)."""
    try:
        async with asyncio.timeout(max(ticket.seconds_left(), 0.0)):
            return await work
    except TimeoutError:
        raise _deadline_exceeded(ticket) from None


async def _counted(outputs: AsyncIterator[GenerationOutput], decision: Decision
                   ) -> AsyncIterator[GenerationOutput]:
    """`outputs`, their generated tokens added to the decision's as they come."""
    try:
        async for out in outputs:
            decision.generated_tokens += sum(len(choice.token_ids) for choice in out.choices)
            yield out
    finally:
        await outputs.aclose()


def _joined(a: Choice, b: Choice) -> Choice:
    """Two deltas of one choice as one."""
    logprobs = (None if a.logprobs is None and b.logprobs is None
                else [*(a.logprobs or ()), *(b.logprobs or ())])
    return Choice(index=a.index, text=a.text + b.text,
                  token_ids=[*a.token_ids, *b.token_ids], logprobs=logprobs,
                  finish_reason=b.finish_reason or a.finish_reason,
                  stop_reason=b.stop_reason if b.finish_reason else a.stop_reason)


def _held(chunks: AsyncIterator[dict], ticket: Ticket, decision: Decision
          ) -> AsyncIterator[dict]:
    """`chunks`, each within the request's deadline, releasing the ticket when the stream ends:
    at its end (with what the request spent), on an error, when the client leaves, or, if it
    never started, when it is dropped."""

    async def held() -> AsyncIterator[dict]:
        try:
            while True:
                try:
                    async with asyncio.timeout(max(ticket.seconds_left(), 0.0)):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    ticket.spent(decision.spent_tokens)
                    return
                except TimeoutError:
                    raise _deadline_exceeded(ticket) from None
                yield chunk
        finally:
            ticket.release()
            await chunks.aclose()

    stream = held()
    weakref.finalize(stream, ticket.release)
    return stream


def _deadline_exceeded(ticket: Ticket) -> APIError:
    return APIError(504, f"the request ran past this server's deadline of "
                         f"{ticket.admission.request_timeout_s:g} s (--request-timeout-s); ask "
                         "for fewer tokens or a smaller search budget", code="deadline_exceeded")


def json_response(body: BaseModel, headers: dict[str, str]) -> JSONResponse:
    """`body` as FastAPI renders a returned model (JSON mode, by alias), without the second walk
    over the dumped dict that FastAPI's jsonable_encoder makes."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True), headers=headers)


def filter_reason(delta) -> str | None:
    """A streamed delta's content-filter reason (the screen puts it in stop_reason)."""
    return delta.stop_reason if delta.finish_reason == "content_filter" else None


def is_search(decision: Decision) -> bool:
    """Whether the decision runs searches (an escalation's greedy stage is one, and so is a
    chunked greedy path: several requests)."""
    return (decision.strategy != "greedy" or decision.plan is not None
            or decision.options.context is not None)


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
