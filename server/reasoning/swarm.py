"""The swarm strategy (issue 36): decompose the problem with a task's decomposer, send each part
to a specialist (the learned router's pick, a route the request names, or what the manifests
declare), solve independent parts concurrently, each with its own strategy and the request's
verifiers, and integrate the answers with the decomposer. One token budget and one deadline
hold for the whole tree (search/swarm/run.py), and the client leaving cancels all of it.

Each specialist's engine calls run in a request scope of their own (the request's key and the
model), so a remote fleet keeps every specialist's calls on one replica, with its prefix cache
and its adapter slot, while different specialists may spread over replicas.

Bad input is a 400 before any work: a specialist, route or Self-MoA model that is not served or
not allowed for the caller's key, an unknown decomposer, a decomposition deeper than the limit,
a malformed composite question. A specialist that fails mid-request degrades its part (the base
model answers it instead, and says so), not the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.registry import AdapterRegistry
from engine.scope import RequestScope, current_scope, request_scope
from search.params import SearchParams
from search.problem import Answer, SearchProblem, SearchResult, SearchStats
from search.swarm import moa
from search.swarm.decomposers import Decomposer, decompose, load_decomposers, slot_value
from search.swarm.plan import Part
from search.swarm.router import BASE, DeclaredRouter, LearnedRouter, declaration_text
from search.swarm.run import Solved, Tree, solve_tree
from server.errors import bad_request
from server.openai.protocol import SamplingRequest
from server.reasoning.options import ReasoningOptions, SwarmOptions
from server.settings import Settings
from server.tenancy import current_tenant
from verifiers.scorer import Scorer

if TYPE_CHECKING:  # the service calls this module, not the other way round
    from server.reasoning.service import Decision, ReasoningService

log = logging.getLogger(__name__)

Plan = tuple[Decomposer | None, Part]


class Swarm:
    """What the swarm needs from the server, built once: decomposers, the learned router, the
    adapter registry (what is served, what each adapter declares)."""

    def __init__(self, settings: Settings, adapters: AdapterRegistry) -> None:
        self.settings = settings
        self.adapters = adapters
        self.decomposers = load_decomposers()
        self.router = load_router(settings.swarm_router)

    # --- checks (400s) ------------------------------------------------------------------------

    def check(self, options: ReasoningOptions) -> None:
        swarm = options.swarm or SwarmOptions()
        limit = self.settings.swarm_max_depth
        if swarm.max_depth is not None and swarm.max_depth > limit:
            raise bad_request(f"reasoning.swarm.max_depth={swarm.max_depth} is above this "
                              f"server's limit of {limit} (--swarm-max-depth)",
                              param="reasoning.swarm.max_depth")
        if swarm.decomposer is not None and swarm.decomposer not in self.decomposers:
            raise bad_request(f"unknown decomposer {swarm.decomposer!r}; this server has "
                              f"{sorted(self.decomposers)}", param="reasoning.swarm.decomposer")
        named = [("specialists", m) for m in swarm.specialists or ()]
        named += [("routes", m) for m in (swarm.routes or {}).values()]
        named += [("moa_models", m) for m in swarm.moa_models or ()]
        allowed = self._allowed()
        for field, model in named:
            param = f"reasoning.swarm.{field}"
            if not self.adapters.is_known(model):
                raise bad_request(f"{param} names {model!r}, which this server does not serve; "
                                  f"use the base model {self.adapters.base_name!r} or an adapter "
                                  f"(GET /v1/models lists them)", param=param)
            if allowed is not None and model not in allowed:
                raise bad_request(f"{param} names {model!r}, which your API key may not use in "
                                  f"a swarm; allowed: {sorted(allowed)}", param=param)

    def _allowed(self) -> set[str] | None:
        tenant = current_tenant()
        if tenant is None or tenant.name not in self.settings.swarm_allowed:
            return None
        return set(self.settings.swarm_allowed[tenant.name])

    def plan(self, question: str, options: ReasoningOptions) -> Plan:
        swarm = options.swarm or SwarmOptions()
        try:
            decomposer, root = decompose(question, self.decomposers, swarm.decomposer)
        except ValueError as exc:
            raise bad_request(f"the question does not decompose: {exc}",
                              param="messages") from None
        limit = min(self.settings.swarm_max_depth, swarm.max_depth
                    if swarm.max_depth is not None else self.settings.swarm_max_depth)
        if root.depth > limit:
            raise bad_request(f"the question decomposes {root.depth} levels deep, over the limit "
                              f"of {limit}; nest fewer sub-problems, or raise "
                              "reasoning.swarm.max_depth (up to --swarm-max-depth "
                              f"{self.settings.swarm_max_depth})",
                              param="reasoning.swarm.max_depth")
        return decomposer, root

    # --- routing ------------------------------------------------------------------------------

    def specialists(self, swarm: SwarmOptions) -> list[str]:
        """The models the parts may go to: the request's, else the server's, else the base and
        every adapter that declares skills; those the caller's key may use."""
        models = (swarm.specialists or self.settings.swarm_specialists
                  or [self.adapters.base_name, *self.adapters.declaring()])
        allowed = self._allowed()
        return [m for m in models if allowed is None or m in allowed] or \
            [self.adapters.base_name]

    def choose(self, question: str, swarm: SwarmOptions, models: Sequence[str]
               ) -> tuple[str, str, dict[str, float]]:
        """(model, why, the router's scores) for a part's question."""
        routes = swarm.routes or {}
        prefix = max((p for p in routes if question.startswith(p)), key=len, default=None)
        if prefix is not None:
            return routes[prefix], f"route {prefix!r}", {}
        base = self.adapters.base_name
        if swarm.routing == "learned" and self.router is not None:
            names = [BASE if m == base else m for m in models]
            choice = self.router.choose(question, names)
            if choice is not None:
                model = base if choice.model == BASE else choice.model
                return model, choice.why, choice.scores
        declared = DeclaredRouter({m: declaration_text(s) for m in models
                                   if (s := self.adapters.skills(m)) is not None})
        choice = declared.choose(question, list(models))
        if choice is not None:
            return choice.model, choice.why, choice.scores
        return base, "no specialist declares it: the base", {}


def load_router(path: str | None) -> LearnedRouter | None:
    if not path:
        return None
    if not Path(path).is_file():
        log.info("no swarm router at %s: swarm parts are routed by declared skills", path)
        return None
    try:
        return LearnedRouter.load(path)
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ValueError(f"swarm router {path} does not load: {exc}; retrain it with `python -m "
                         "training.swarm_router` or start with --swarm-router ''") from exc


async def swarm_search(service: ReasoningService, decision: Decision, problem: SearchProblem,
                       request: SamplingRequest, params: SearchParams) -> SearchResult:
    swarm_ = service.swarm
    options = decision.options.swarm or SwarmOptions()
    decomposer, root = decision.swarm_plan or swarm_.plan(problem.question, decision.options)
    models = swarm_.specialists(options)
    scorer = service.scorer(decision)
    base = service.adapters.base_name
    parent = current_scope()
    # one scope per specialist for the whole request: the remote engine's sticky replica is
    # held by the scope object (weakly), so a part's own object would let it go when that part
    # ended while the specialist's other parts still ran, and they would choose anew
    scopes: dict[str, RequestScope] = {}

    def scope_for(who: str) -> RequestScope | None:
        if parent is None:
            return None
        return scopes.setdefault(who, RequestScope(f"{parent.key}/swarm/{who}",
                                                   parent.cache_salt))

    async def solve(part: Part, question: str, tokens: int | None,
                    seconds: float | None) -> Solved:
        model, why, scores = swarm_.choose(question, options, models)
        sub = dataclasses.replace(problem, prompt=_render(problem, question), question=question,
                                  prompt_token_ids=None, on_progress=None)
        limits = {"budget_tokens": tokens, "timeout_s": seconds}
        try:
            result = await _answer(service, decision, request, params, options, scorer, sub,
                                   model, limits, scope_for)
        except Exception as exc:  # the specialist failed: its part degrades, on the base
            if model == base:
                raise
            log.warning("swarm specialist %r failed on part %s (%s: %s); the base answers it",
                        model, part.id, type(exc).__name__, exc)
            why = f"{why}; {model} failed ({type(exc).__name__}): the base answered"
            model = base
            result = await _answer(service, decision, request, params, options, scorer, sub,
                                   model, limits, scope_for)
        if scores:
            why = f"{why} (of {json.dumps(scores)})"
        return Solved(part, question, model, options.strategy if options.mode == "route"
                      else "self_moa", result, route=why)

    tree = await solve_tree(root, solve, problem.answer_extractor, params.budget_tokens,
                            params.timeout_s, options.concurrent,
                            fill=lambda answer: slot_value(decomposer, answer))
    return integrate(tree, decomposer, problem.answer_extractor, options)


async def _answer(service: ReasoningService, decision: Decision, request: SamplingRequest,
                  params: SearchParams, options: SwarmOptions, scorer: Scorer,
                  problem: SearchProblem, model: str, limits: dict,
                  scope_for: Callable[[str], RequestScope | None]) -> SearchResult:
    """One part answered by `model` (Self-MoA: by each of its models), within its limits, in
    the specialist's own request scope (`scope_for`: the request's, one per specialist)."""
    def own(strategy: str, **changes) -> SearchParams:
        mine = service.params(decision, request, params.max_tokens, strategy=strategy)
        limited = {k: v if getattr(mine, k) is None else min(getattr(mine, k), v)
                   for k, v in limits.items() if v is not None}
        return dataclasses.replace(mine, **{"n_answers": 1, **limited, **changes})

    async def run(strategy: str, who: str, p: SearchParams) -> SearchResult:
        scope = scope_for(who)
        if scope is None:
            return await service.run(strategy, scorer, problem, who, p)
        with request_scope(scope):
            return await service.run(strategy, scorer, problem, who, p)

    if options.mode == "self_moa":
        moa_models = options.moa_models or [model]
        results = await asyncio.gather(*(
            run("best_of_n", m, own("best_of_n", selection="weighted_vote",
                                    n_answers=4)) for m in moa_models))
        return moa.aggregate(results, problem.answer_extractor)
    return await run(options.strategy, model, own(options.strategy))


def _render(problem: SearchProblem, question: str) -> str:
    """The part's prompt: the request's prompt with its question replaced by the part's (a
    chat keeps its template and other messages)."""
    at = problem.prompt.rfind(problem.question)
    if at < 0:
        return question + "\n"
    return problem.prompt[:at] + question + problem.prompt[at + len(problem.question):]


def integrate(tree: Tree, decomposer: Decomposer | None, extractor: str,
              options: SwarmOptions) -> SearchResult:
    """One result from the solved tree: the decomposer's integration of the parts' solutions,
    scored by the product of the parts' scores (a part no one answered scores 0), with every
    part's work in the stats and the decomposition in details["swarm"]."""
    parts = [tree.solved[p.id] for p in tree.root.walk()]
    results = [s.result for s in parts if s.result is not None]
    stats = SearchStats(wall_s=tree.wall_s)
    for name in moa.STATS:
        setattr(stats, name, sum(getattr(r.stats, name) for r in results))
    stats.stopped_by = next((s.error for s in parts if s.error), None)
    details = {"swarm": report(tree, parts, decomposer, extractor, options)}
    root = tree.solved[tree.root.id]
    if decomposer is None and root.result is not None:  # a tree of one part: its answer
        result = root.result
        return dataclasses.replace(result, stats=stats, details={**result.details, **details})
    bests = [s.result.best if s.result is not None else None for s in parts]
    answered = [b for b in bests if b is not None]
    score = math.prod(b.score if b is not None else 0.0 for b in bests)
    names = {n for b in answered for n in b.verifier_scores}
    text = (decomposer.integrate(tree.root, {s.part.id: s.question for s in parts},
                                 {s.part.id: b.text for s, b in zip(parts, bests)
                                  if b is not None})
            if decomposer is not None else "")
    last = bests[-1]
    answer = Answer(
        steps=tuple(step for b in answered for step in b.steps), text=text, score=score,
        step_scores=tuple(x for b in answered for x in b.step_scores),
        verifier_scores={n: math.prod(b.verifier_scores.get(n, 1.0) for b in answered)
                         for n in sorted(names)},
        step_verifier_scores=tuple(x for b in answered for x in b.step_verifier_scores),
        finish_reason="stop" if all(b is not None and b.finish_reason == "stop"
                                    for b in bests) else "length",
        tokens=sum(b.tokens for b in answered),
        signals={**(last.signals if last is not None else {}), "verifier": score})
    errors = {k: v for r in results for k, v in r.verifier_errors.items()}
    return SearchResult(answers=[answer], stats=stats, verifier_errors=errors, details=details)


def report(tree: Tree, parts: list[Solved], decomposer: Decomposer | None, extractor: str,
           options: SwarmOptions) -> dict:
    """The response's reasoning.swarm: the decomposition, who solved what, and the scores."""
    rows = []
    for s in parts:
        best = s.result.best if s.result is not None else None
        rows.append({
            "id": s.part.id, "question": s.question,
            "depends_on": [c.id for c in s.part.children],
            "model": s.model, "strategy": s.strategy, "route": s.route,
            "answer": s.answer(extractor) or None,
            "score": None if best is None else round(best.score, 4),
            "verifier_scores": {} if best is None else {k: round(v, 4) for k, v in
                                                        best.verifier_scores.items()},
            "tokens": 0 if s.result is None else s.result.stats.generated_tokens,
            "engine_calls": 0 if s.result is None else s.result.stats.engine_calls,
            "started_s": round(s.started_s, 4), "ended_s": round(s.ended_s, 4),
            "error": s.error})
    return {"decomposer": None if decomposer is None else decomposer.name,
            "depth": tree.root.depth, "mode": options.mode, "concurrent": options.concurrent,
            "parts": rows, "wall_s": round(tree.wall_s, 4),
            # what the parts took one after another: the concurrency's saving
            "parts_s": round(sum(s.ended_s - s.started_s for s in parts), 4)}
