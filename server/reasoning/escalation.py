"""Confidence-gated escalation (issue 33), a way `auto` runs: the cheapest stage answers first,
and the next stage runs only while the answer's calibrated confidence is below the target, all
the stages within one token budget and one deadline. Every stage sends the same prompt ids, so
the engine's prefix cache serves the later stages the prompt the first one filled.

The answer returned is the first that reaches the target; when none does (the stages, the
budget or the time ran out), the most confident one (the later stage on a tie).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult, SearchStats
from server.openai.protocol import SamplingRequest
from verifiers.scorer import Scorer

if TYPE_CHECKING:  # the service calls this module, not the other way round
    from server.reasoning.service import Decision, ReasoningService


@dataclass(frozen=True)
class Stage:
    """One stage's search, its answer's confidence, and the verifiers that scored it."""
    strategy: str
    result: SearchResult
    confidence: float
    verifiers: tuple[str, ...] = ()


# (strategy, tokens left, whether it is the first stage) -> the stage run
RunStage = Callable[[str, int, bool], Awaitable[Stage]]


@dataclass
class Escalation:
    stages: list[Stage]
    answered: Stage  # whose answer is returned
    report: list[dict]  # the response's reasoning.stages

    @property
    def last(self) -> Stage:
        return self.stages[-1]

    def result(self) -> SearchResult:
        """The answering stage's result, with every stage's work in its stats."""
        total = SearchStats(stopped_by=self.last.result.stats.stopped_by)
        for stage in self.stages:
            for name in ("nodes", "engine_calls", "generated_tokens", "busy_s", "wall_s"):
                setattr(total, name, getattr(total, name) + getattr(stage.result.stats, name))
        return dataclasses.replace(self.answered.result, stats=total)


async def escalate(plan: Sequence[str], run_stage: RunStage, target: float, budget_tokens: int,
                   deadline: float | None = None, route: str | None = None) -> Escalation:
    """Runs `plan`'s stages in order until one's answer reaches `target`. `deadline`: a
    time.monotonic() after which no stage starts; `route`: why the plan starts where it does
    (the first stage's report says it)."""
    stages: list[Stage] = []
    report: list[dict] = []
    spent = 0
    for i, strategy in enumerate(plan):
        stage = await run_stage(strategy, max(budget_tokens - spent, 0), i == 0)
        stages.append(stage)
        tokens = stage.result.stats.generated_tokens
        spent += tokens
        why = [route] if i == 0 and route else []
        if stage.confidence >= target:
            why.append(f"target reached: confidence {stage.confidence:.2f} >= {target:g}")
        else:
            why.append(f"confidence {stage.confidence:.2f} < target {target:g}")
            if i == len(plan) - 1:
                why.append("no stage left")
            elif spent >= budget_tokens:
                why.append(f"budget spent ({spent} of {budget_tokens} tokens)")
            elif deadline is not None and time.monotonic() >= deadline:
                why.append("time spent")
            else:
                why.append(f"escalate to {plan[i + 1]}")
        report.append({"strategy": strategy, "confidence": round(stage.confidence, 4),
                       "tokens": tokens, "why": "; ".join(why)})
        if not why[-1].startswith("escalate"):
            break
    answered = max(reversed(stages), key=lambda s: s.confidence)
    for entry, stage in zip(report, stages):
        entry["answered"] = stage is answered
    return Escalation(stages, answered, report)


async def escalated_search(service: ReasoningService, decision: Decision,
                           problem: SearchProblem, request: SamplingRequest,
                           params: SearchParams) -> tuple[SearchResult, tuple[str, ...]]:
    """The decision's plan, run by confidence (escalation.escalate) within `params`' token
    budget and time; the answer returned and the verifiers that scored it. The decision
    ends with the last stage's strategy and the stages' report."""
    s, o = service.settings, decision.options
    target = o.target_confidence if o.target_confidence is not None else s.target_confidence
    deadline = None if params.timeout_s is None else time.monotonic() + params.timeout_s
    plan = decision.plan or (decision.strategy,)

    async def run_stage(strategy: str, tokens_left: int, first: bool) -> Stage:
        decision.strategy = strategy
        own = service.params(decision, request, params.max_tokens)
        changes: dict = {"budget_tokens": min(own.budget_tokens or tokens_left, tokens_left)}
        if deadline is not None:
            changes["timeout_s"] = max(deadline - time.monotonic(), 0.001)
        if "greedy" in plan[:plan.index(strategy)] and getattr(own, "accept_greedy", None):
            changes["accept_greedy"] = None  # the greedy stage has answered already
        own = dataclasses.replace(own, **changes)
        if strategy == "greedy":  # one pass's answer, judged as a single pass is
            result = await service.run(strategy, Scorer({}, {}), problem, request.model, own)
            result.answers = [dataclasses.replace(a, signals={**a.signals, "verifier": None})
                              for a in result.answers]
            verifiers: tuple[str, ...] = ()
        else:
            result = await service.run(strategy, service.scorer(decision), problem,
                                       request.model, own)
            verifiers = tuple(service.search_verifiers(decision))
        value, _ = service.calibrated(request.model, result.best.signals, verifiers,
                                      strategy)
        return Stage(strategy, result, value, verifiers)

    run = await escalate(plan, run_stage, target,
                         params.budget_tokens or service.escalation_budget(decision),
                         deadline, decision.plan_why)
    decision.strategy, decision.stages = run.last.strategy, run.report
    result = run.result()
    service.count_tokens(decision, result)
    return result, run.answered.verifiers

