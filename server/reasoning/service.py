"""Routes a request to a strategy and runs the search; chat and completions shape the result.

Per request: validate the `reasoning` options against the server's caps (400 naming the field),
pick the strategy (explicit > effort > estimated difficulty), and for a search strategy run it
with the request's verifiers, keeping the model's adapter resident for the whole search.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.registry import AdapterRegistry
from search.calibration import uncalibrated
from search.difficulty.protocol import DifficultyEstimator, as_estimate
from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.registry import STRATEGIES
from search.router import Thresholds, needs_difficulty, route
from engine.protocol import Engine
from server.errors import bad_request
from server.openai.chat.thinking import CLOSE as THINKING_END, OPEN as THINKING_START
from server.openai.protocol import SamplingRequest
from server.reasoning import metrics
from server.reasoning.confidence_table import load_confidence_table
from server.reasoning.context import chunking
from server.reasoning.options import ReasoningOptions, step_delimiter
from server.reasoning.router_table import default_thresholds, load_router_table
from server.reasoning.swarm import Swarm
from server.settings import Settings
from server.verify.service import VerifyService
from verifiers.scorer import Scorer
from verifiers.states import discover as discover_states

log = logging.getLogger(__name__)

# the steps a step search may take along a chunked path (reasoning.context); max_tokens, the
# token budget and max_nodes bound it too
CHUNKED_MAX_STEPS = 4096
# reasoning options only the deepconf strategy reads
DEEPCONF_OPTIONS = frozenset({"deepconf_mode", "keep_share", "warmup", "confidence_signal",
                              "consensus"})


@dataclass
class Decision:
    strategy: str
    difficulty: float | None = None
    estimator: str | None = None
    probe_tokens: int = 0  # generated to estimate the difficulty
    options: ReasoningOptions = field(default_factory=ReasoningOptions)
    problem: SearchProblem | None = None  # what a search strategy works on (built once)
    route: Thresholds | None = None  # the router's, when it chose the strategy (auto)
    search_params: SearchParams | None = None  # set once admitted (its deadline applied)
    generated_tokens: int = 0  # by the single pass or the search, as they run (admission's)
    confidence: dict | None = None  # the answer's (ReasoningService.confidence)
    abstained: bool = False  # the answer was withheld below reasoning.abstain_below
    # confidence-gated escalation (server/reasoning/escalation.py): the stages to run, why the
    # first is first, and (once run) the response's reasoning.stages
    plan: tuple[str, ...] | None = None
    plan_why: str | None = None
    stages: list[dict] | None = None
    # the swarm strategy's decomposition (server/reasoning/swarm.py), checked when decided
    swarm_plan: tuple | None = None

    @property
    def spent_tokens(self) -> int:
        """Everything the request has generated so far, the probe's included."""
        return self.probe_tokens + self.generated_tokens


class ReasoningService:
    def __init__(self, settings: Settings, engine: Engine, adapters: AdapterRegistry,
                 verify: VerifyService, estimators: dict[str, DifficultyEstimator]) -> None:
        self.settings = settings
        self.engine = engine
        self.adapters = adapters
        self.verify = verify
        self.estimators = [estimators[n] for n in settings.difficulty_estimators
                           if n in estimators]
        self.thresholds = default_thresholds(settings)
        self.router_table = load_router_table(settings)
        self.confidence_table = load_confidence_table(settings)
        self._defaults_by_strategy: dict[str, ReasoningOptions] = {}
        self.states = discover_states()  # carry-over states of reasoning.context
        self.swarm = Swarm(settings, adapters)

    # --- deciding -----------------------------------------------------------------------------

    def options(self, request: SamplingRequest) -> ReasoningOptions:
        if request.reasoning is None:
            # most requests: the default options, built and checked once (never mutated)
            default = "auto" if request.reasoning_effort else self.settings.default_strategy
            options = self._defaults_by_strategy.get(default)
            if options is None:
                options = ReasoningOptions().model_copy(update={"strategy": default})
                self._check_caps(options)
                self._defaults_by_strategy[default] = options
            return options
        options = request.reasoning
        if "strategy" not in request.reasoning.model_fields_set:
            # Unnamed: an effort routes by itself; otherwise the server's default applies.
            default = "auto" if request.reasoning_effort else self.settings.default_strategy
            options = options.model_copy(update={"strategy": default})
        self._check_caps(options)
        if options.accept_greedy is not None and options.strategy not in ("mcts", "auto"):
            raise bad_request(f"reasoning.accept_greedy applies to mcts (and auto when it routes "
                              f"to mcts), not {options.strategy!r}; drop it",
                              param="reasoning.accept_greedy")
        if options.escalate is not None and options.strategy != "auto":
            raise bad_request(f"reasoning.escalate applies to the auto strategy, not "
                              f"{options.strategy!r}; drop it or ask for \"strategy\": \"auto\"",
                              param="reasoning.escalate")
        if options.escalation_stages is not None:
            if options.strategy != "auto":
                raise bad_request(f"reasoning.escalation_stages applies to the auto strategy, not "
                                  f"{options.strategy!r}; drop it or ask for \"strategy\": "
                                  "\"auto\"", param="reasoning.escalation_stages")
            if options.escalate is False:
                raise bad_request("reasoning.escalation_stages asks for an escalation that "
                                  "reasoning.escalate=false turns off; drop one of them",
                                  param="reasoning.escalation_stages")
        # a deepconf stage of this request's escalation reads them too
        deepconf_stage = "deepconf" in (options.escalation_stages or ())
        if options.context is not None and (options.strategy == "deepconf" or deepconf_stage):
            raise bad_request("reasoning.context is not available with deepconf (its traces "
                              "stream whole); drop it or ask for another strategy",
                              param="reasoning.context")
        for name in DEEPCONF_OPTIONS & options.model_fields_set:
            if options.strategy != "deepconf" and not deepconf_stage:
                raise bad_request(f"reasoning.{name} applies to the deepconf strategy, not "
                                  f"{options.strategy!r}; drop it or ask for \"strategy\": "
                                  "\"deepconf\"", param=f"reasoning.{name}")
        if options.swarm is not None and options.strategy != "swarm":
            raise bad_request(f"reasoning.swarm applies to the swarm strategy, not "
                              f"{options.strategy!r}; drop it or ask for \"strategy\": "
                              "\"swarm\"", param="reasoning.swarm")
        if options.strategy == "swarm":
            if request.n > 1:
                raise bad_request("the swarm strategy integrates one answer; ask for n=1 (or "
                                  "self_moa mode, which votes over samples, with n=1)",
                                  param="n")
            self.swarm.check(options)
        if options.verifiers is not None:
            self.verify.weights_for(options.verifiers, param="reasoning.verifiers")
        return options

    def _check_caps(self, o: ReasoningOptions) -> None:
        s = self.settings
        for name, value, cap in (("beam_width", o.beam_width, s.max_beam_width),
                                 ("max_depth", o.max_depth, s.max_depth),
                                 ("simulations", o.simulations, s.max_simulations),
                                 ("n_candidates", o.n_candidates, s.max_candidates),
                                 ("budget_tokens", o.budget_tokens, s.max_search_tokens),
                                 ("max_nodes", o.max_nodes, s.max_search_nodes),
                                 ("timeout_s", o.timeout_s, s.max_search_timeout_s)):
            if value is not None and value > cap:
                raise bad_request(f"reasoning.{name}={value} is above this server's limit of "
                                  f"{cap:g}", param=f"reasoning.{name}")

    async def decide(self, request: SamplingRequest, problem: SearchProblem | None,
                     single_pass: str | None = None,
                     options: ReasoningOptions | None = None) -> Decision:
        """`single_pass` names a field the request uses that only a single pass can honour
        (logprobs, stop, ...): `auto` then answers in one pass, and a search strategy is a 400.
        `options`: the request's, when the caller has checked them already (`options`)."""
        options = options or self.options(request)
        decision = Decision(strategy="greedy", options=options, problem=problem)
        if single_pass is not None and options.context is not None:
            raise bad_request(f"{single_pass} is not available with reasoning.context (a "
                              "chunked path is generated in several requests); drop one of "
                              "them", param=single_pass)
        if single_pass is not None:
            # auto answers in one pass here, whatever the difficulty
            explicit = ("greedy" if needs_difficulty(options.strategy, request.reasoning_effort)
                        else route(options.strategy, request.reasoning_effort, None))
            if explicit != "greedy":
                raise bad_request(f"{single_pass} is not available with the {explicit!r} "
                                  "strategy (a search returns whole answers); drop it or ask "
                                  "for reasoning_effort \"low\"", param=single_pass)
            metrics.REQUESTS_BY_STRATEGY.labels(strategy="greedy").inc()
            return decision
        if needs_difficulty(options.strategy, request.reasoning_effort) and problem is not None:
            # The probe samples the requested model (base or adapter), kept resident meanwhile.
            async with self.adapters.acquire(request.model) as adapter:
                await self._estimate(dataclasses.replace(problem, adapter=adapter), decision)
        if decision.difficulty is None and needs_difficulty(options.strategy,
                                                            request.reasoning_effort):
            decision.strategy = "greedy"  # no estimator answered: spend nothing extra
        else:
            thresholds = self.thresholds_for(decision)
            decision.strategy = route(options.strategy, request.reasoning_effort,
                                      decision.difficulty, thresholds)
            if needs_difficulty(options.strategy, request.reasoning_effort):
                decision.route = thresholds
        if problem is not None:
            self._plan(decision, request)
            if decision.strategy == "swarm":
                decision.swarm_plan = self.swarm.plan(problem.question, options)
        metrics.REQUESTS_BY_STRATEGY.labels(strategy=decision.strategy).inc()
        return decision

    def _plan(self, decision: Decision, request: SamplingRequest) -> None:
        """An escalating `auto` runs the server's stages from the one it routes to (the first,
        if it routes to none of them). A greedy stage answers once: a request for n > 1
        answers starts past it."""
        o = decision.options
        escalate = (o.escalate if o.escalate is not None
                    else o.escalation_stages is not None or self.settings.auto_escalate)
        stages = [s for s in o.escalation_stages or self.settings.escalation_stages
                  if not (s == "greedy" and request.n > 1)]
        if o.strategy != "auto" or not escalate or not stages:
            return
        routed = decision.strategy
        start = stages.index(routed) if routed in stages else 0
        decision.plan = tuple(stages[start:])
        decision.strategy = decision.plan[0]
        if request.reasoning_effort is not None:
            decision.plan_why = f"reasoning_effort {request.reasoning_effort} routes to {routed}"
        elif decision.difficulty is not None:
            decision.plan_why = f"difficulty {decision.difficulty:.2f} routes to {routed}"
        if decision.plan_why is not None and routed != decision.strategy:
            decision.plan_why += f", not a stage here: {decision.strategy} first"

    def escalation_budget(self, decision: Decision) -> int:
        """The tokens all the stages of an escalation may generate together."""
        return decision.options.budget_tokens or self.settings.max_search_tokens

    def thresholds_for(self, decision: Decision) -> Thresholds:
        """The router table's thresholds for this search's verifiers, else the defaults."""
        if self.router_table is None:
            return self.thresholds
        weights = (decision.options.verifiers if decision.options.verifiers is not None
                   else self.settings.search_verifiers)
        fitted = self.router_table.thresholds_for(
            [name for name, weight in weights.items() if weight], decision.estimator)
        return fitted or self.thresholds

    async def _estimate(self, problem: SearchProblem, decision: Decision) -> None:
        for estimator in self.estimators:
            try:
                estimate = as_estimate(await estimator.estimate(problem))
            except Exception as exc:  # a broken estimator degrades routing, not the request
                log.warning("difficulty estimator %r failed (%s: %s); trying the next",
                            estimator.name, type(exc).__name__, exc)
                continue
            decision.difficulty = min(max(estimate.difficulty, 0.0), 1.0)
            decision.estimator = estimator.name
            decision.probe_tokens = estimate.generated_tokens
            metrics.DIFFICULTY.observe(decision.difficulty)
            return

    def problem(self, problem: SearchProblem, request: SamplingRequest,
                prompt_token_ids: Sequence[int]) -> SearchProblem:
        """`problem` (the endpoint's prompt and question) with what every search takes from the
        request and the server's settings: the prompt's ids as a single pass sends them, where
        steps end, the request's stop strings (each ends the solution), how answers are read,
        and the seed."""
        options = request.reasoning or ReasoningOptions()
        delimiter = (options.step_delimiter if options.step_delimiter is not None
                     else self.settings.step_delimiter)
        if options.physics is not None:
            problem = dataclasses.replace(problem, context=dataclasses.replace(
                problem.context, extra={**problem.context.extra, **options.physics.extra()}))
        problem = dataclasses.replace(
            problem, prompt_token_ids=tuple(prompt_token_ids),
            delimiter=step_delimiter(delimiter), stop=request.stop_strings(),
            answer_extractor=options.answer_extractor or self.settings.answer_extractor,
            seed=request_seed(request, prompt_token_ids),
            thinking_end=None if self.settings.reasoning_parser is None else THINKING_END)
        if options.context is not None:
            problem = dataclasses.replace(problem, chunking=chunking(
                options.context, problem, prompt_token_ids, self.engine, self.states,
                None if self.settings.reasoning_parser is None else THINKING_START))
        return problem

    @staticmethod
    def single_pass_feature(request: SamplingRequest, **fields: object) -> str | None:
        """The first single-pass-only field the request sets (`fields`: endpoint-specific)."""
        if request.ignore_eos:
            return "ignore_eos"
        for name in ("logit_bias", "presence_penalty", "frequency_penalty"):
            if getattr(request, name):  # shapes one sampled text, not a search's steps
                return name
        return next((name for name, value in fields.items() if value), None)

    # --- confidence ---------------------------------------------------------------------------

    def search_verifiers(self, decision: Decision) -> list[str]:
        """The verifiers (non-zero weight) that score a search's answers."""
        weights = (decision.options.verifiers if decision.options.verifiers is not None
                   else self.settings.search_verifiers)
        return sorted(name for name, weight in weights.items() if weight)

    def confidence(self, decision: Decision, model: str,
                   signals: Mapping[str, float | int | None], verifiers: Iterable[str]
                   ) -> dict:
        """The answer's confidence, kept on the decision (the response's
        `reasoning.confidence`): its family's calibrated probability (search.calibration: the
        served `model`, the `verifiers` that scored it, none for a single pass, and the
        decision's strategy), else the
        uncalibrated monotone mapping; and whether the answer is withheld below the request's
        abstain_below."""
        value, calibrated = self.calibrated(model, signals, verifiers, decision.strategy)
        metrics.CONFIDENCE.labels(strategy=decision.strategy).observe(value)
        decision.confidence = {
            "value": round(value, 4), "calibrated": calibrated,
            "signals": {k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in signals.items()}}
        below = decision.options.abstain_below
        decision.abstained = below is not None and value < below
        if decision.abstained:
            metrics.ABSTENTIONS.labels(strategy=decision.strategy).inc()
        return decision.confidence

    def calibrated(self, model: str, signals: Mapping[str, float | int | None],
                   verifiers: Iterable[str], strategy: str | None = None
                   ) -> tuple[float, bool]:
        """The probability that an answer with these signals is right, and whether a fitted
        family gave it (else the uncalibrated mapping)."""
        table = self.confidence_table
        family = None if table is None else table.family_for(model, verifiers, strategy)
        if family is None:
            return uncalibrated(signals), False
        return family.probability(signals), True

    # --- searching ----------------------------------------------------------------------------

    def params(self, decision: Decision, request: SamplingRequest, max_tokens: int,
               strategy: str | None = None) -> SearchParams:
        """The params of `strategy` (default: the decision's), each setting from the first that
        gives it: the request's `reasoning` options, the router table's route (for the mcts it
        routes to), the server's defaults; the strategy's own default where none does."""
        o, s = decision.options, self.settings
        strategy = strategy or decision.strategy
        fitted = decision.route if strategy == "mcts" else None
        route = {} if fitted is None else {"accept_greedy": fitted.accept_greedy,
                                           "budget_tokens": fitted.budget_tokens}
        problem = decision.problem
        request_level = dict(
            seed=problem.seed if problem is not None else request.seed,
            # a branch must sample: an unset or zero temperature samples at the search's
            temperature=request.temperature or s.search_temperature,
            top_p=request.top_p, max_tokens=max_tokens, n_answers=request.n,
            # a chunked path is long by design: a step search follows it to its end, not to
            # the 16 steps after which it would finish the path greedily
            max_steps=CHUNKED_MAX_STEPS if o.context is not None else None)
        options = {k: v for k, v in o.model_dump().items() if v is not None}
        layers = (self._defaults(strategy), route, request_level, options)
        merged = {k: v for layer in layers for k, v in layer.items() if v is not None}
        # a swarm's own params are the shared ones (its parts take their strategy's)
        kind = STRATEGIES[strategy].params if strategy in STRATEGIES else SearchParams
        try:
            return kind.from_options(merged)
        except ValueError as exc:  # settings that do not fit together (deepconf's warm-up)
            raise bad_request(str(exc), param="reasoning") from None

    def _defaults(self, strategy: str) -> dict:
        s = self.settings
        # settings that name one strategy's default; the others keep their own
        own = {"mcts": {"evaluation": s.mcts_evaluation},
               "best_of_n": {"n_candidates": s.n_candidates},
               "self_consistency": {"n_candidates": s.n_candidates}}.get(strategy, {})
        return {"budget_tokens": s.max_search_tokens, "max_nodes": s.max_search_nodes,
                "max_step_tokens": s.max_step_tokens,
                "timeout_s": s.max_search_timeout_s, "stop_score": s.search_stop_score,
                "beam_width": s.beam_width, "max_depth": s.mcts_depth,
                "simulations": s.mcts_simulations,
                "disagreement_threshold": s.verifier_disagreement_threshold or None,
                "confidence_top_k": s.confidence_top_k,
                "confidence_window": s.confidence_window,
                "confidence_tail": s.confidence_tail, **own}

    def scorer(self, decision: Decision) -> Scorer:
        weights = self.verify.weights_for(
            decision.options.verifiers if decision.options.verifiers is not None
            else self.settings.search_verifiers, param="reasoning.verifiers")
        return self.verify.scorer(weights, gate=self.settings.search_verifier_gate or None,
                                  combine=decision.options.combine)

    async def search(self, decision: Decision, problem: SearchProblem, model: str,
                     params: SearchParams) -> SearchResult:
        result = await self.run(decision.strategy, self.scorer(decision), problem, model, params)
        self.count_tokens(decision, result)
        return result

    async def run(self, name: str, scorer: Scorer, problem: SearchProblem, model: str,
                  params: SearchParams) -> SearchResult:
        """One strategy's search, the model's adapter resident meanwhile."""
        async with self.adapters.acquire(model) as adapter:
            problem = dataclasses.replace(problem, adapter=adapter)
            result = await STRATEGIES[name].run(problem, self.engine, scorer, params)
        metrics.NODES.labels(strategy=name).observe(result.stats.nodes)
        if result.verifier_disagreement is not None:
            metrics.VERIFIER_DISAGREEMENTS.labels(
                direction=result.verifier_disagreement["direction"]).inc()
        metrics.SEARCH_SECONDS.labels(strategy=name).observe(result.stats.wall_s)
        return result

    @staticmethod
    def count_tokens(decision: Decision, result: SearchResult) -> None:
        """The request's tokens by kind: the answers', and the rest (the probe's included)."""
        answer_tokens = sum(a.tokens for a in result.answers)
        metrics.TOKENS_BY_KIND.labels(kind="answer").inc(answer_tokens)
        metrics.TOKENS_BY_KIND.labels(kind="reasoning").inc(
            result.stats.generated_tokens + decision.probe_tokens - answer_tokens)


# Options that decide what becomes of the answer, not how it is generated: a request that asks
# to abstain below a confidence, or to reach one, is answered (first) as it would be without,
# so that the confidence it is judged by is that answer's.
ANSWER_ONLY_OPTIONS = {"abstain_below", "target_confidence"}
# Options that only show how the answer was found: the seed leaves them out, so that watching
# a search (the /ui page's stream_trace) does not change what it finds.
OBSERVING_OPTIONS = {"stream_trace"}
# The options the seed's content was fixed with (their nulls were always hashed). Any option
# added since, left unset, is left out, so that an upgrade does not change a temperature-0
# request's answer: a new option's null in the dump had moved every request's seed.
SEED_OPTIONS = frozenset({
    "strategy", "beam_width", "max_depth", "simulations", "n_candidates", "budget_tokens",
    "max_nodes", "timeout_s", "verifiers", "aggregation", "combine", "selection", "evaluation",
    "stop_score", "accept_greedy", "return_trace", "step_delimiter", "max_step_tokens",
    "answer_extractor", "seed"})


def request_seed(request: SamplingRequest, prompt_token_ids: Sequence[int]) -> int | None:
    """The seed of a request's search and probe: `reasoning.seed`, else `seed`; a request at
    temperature 0 (or none: a greedy pass then decodes greedily) that gives neither gets one
    drawn from its own content (prompt ids, model, n, max_tokens, reasoning options), so that
    the same request gets the same answer, as a greedy pass would, when it is routed to a
    search."""
    options = request.reasoning
    if options is not None and options.seed is not None:
        return options.seed
    if request.seed is not None or request.temperature:
        return request.seed
    content = json.dumps([request.model, list(prompt_token_ids), request.n, request.max_tokens,
                          getattr(request, "max_completion_tokens", None),
                          request.reasoning_effort,
                          None if options is None else options.model_dump(
                              mode="json", exclude=ANSWER_ONLY_OPTIONS | OBSERVING_OPTIONS | {
                                  name for name in type(options).model_fields
                                  if name not in SEED_OPTIONS
                                  and getattr(options, name) is None})])
    return int.from_bytes(hashlib.sha256(content.encode()).digest()[:8], "big") >> 1
