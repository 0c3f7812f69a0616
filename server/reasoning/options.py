"""The request's `reasoning` object (design.md "Compute selection"), validated field by field;
unknown keys are refused so that a typo does not silently fall back to a default."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, \
    field_validator

from search.answers import EXTRACTORS
from search.steps import StepDelimiter
from verifiers.physics import options as physics_options
from verifiers.physics import rules as physics_rules

# A 64-bit signed integer, as vLLM's API takes: the engine cannot carry a larger seed (a bigger
# one failed inside it, a 500).
Seed = Annotated[int, Field(ge=-2**63, le=2**63 - 1)]

SearchStrategyName = Literal["greedy", "beam", "mcts", "tot", "best_of_n", "self_consistency",
                             "deepconf"]
StrategyName = Literal["auto", SearchStrategyName, "swarm"]
AnswerExtractor = Literal[tuple(EXTRACTORS)]  # type: ignore[valid-type]
# reasoning_effort's values (design.md "Compute selection")
EFFORTS = ("none", "minimal", "low", "medium", "high")


class StepPattern(BaseModel):
    """A regex step delimiter: a step ends at the first of `triggers` (literal stop strings)
    where the step's text so far ends with a match of `regex`."""
    model_config = ConfigDict(extra="forbid")

    regex: str = Field(min_length=1)
    triggers: list[Annotated[str, Field(min_length=1)]] = Field(["\n"], min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            StepDelimiter(pattern=regex)
        except Exception as exc:  # re.error, or a pattern Python cannot compile
            raise ValueError(f"not a valid regular expression ({exc})") from exc
        return regex


def _one_delimiter(value: object) -> object:
    """Validates a delimiter as the form it is, so that an error names what is wrong with it
    (not with the other member of the union)."""
    if isinstance(value, dict):
        try:
            return StepPattern.model_validate(value)
        except ValidationError as exc:
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                       for e in exc.errors())) from None
    if isinstance(value, str) and not value:
        raise ValueError('a step delimiter cannot be empty: give "\\n", "\\n\\n" or '
                         '{"regex": ...}')
    return value


StepDelimiterOption = Annotated[str | StepPattern, BeforeValidator(_one_delimiter)]


def step_delimiter(value: str | StepPattern | dict) -> StepDelimiter:
    if isinstance(value, StepPattern):
        return StepDelimiter(pattern=value.regex, triggers=tuple(value.triggers))
    return StepDelimiter.of(value)


def distinct_stages(value: list[str] | None) -> list[str] | None:
    """Escalation stages, each named once (the server's --escalation-stages and a request's)."""
    if value is not None and len(set(value)) != len(value):
        raise ValueError(f"escalation stages must be distinct, got {value}")
    return value


class ContextOptions(BaseModel):
    """`reasoning.context`: bounded-context (chunked) reasoning (search/chunking.py)."""
    model_config = ConfigDict(extra="forbid")

    # the path's tokens one chunk holds, its carry-over included (Delethink's C); default: the
    # room the model's window leaves after the prompt
    chunk_tokens: int | None = Field(None, ge=1)
    # what the next chunk starts from after the prompt: the last carry_tokens of the path
    # (Delethink), or a state a plugin derives from the path (the question that remains)
    carry: Literal["last", "state"] = "last"
    # m: the tokens carried ("last"; "state" where no state is found); default chunk_tokens/2
    carry_tokens: int | None = Field(None, ge=0)
    # Delethink's I: the path ends (finish_reason "length") once this many chunks are full
    max_chunks: int | None = Field(None, ge=1)
    # carry "state": the plugin (entry-point group deliberate.states); default: the first
    # that derives a state from the question
    state: str | None = Field(None, min_length=1)


class PhysicsOption(BaseModel):
    """The `units` and `physics` verifiers' options for one request (and the symbolic steps'):
    over the server's --verifier-config for them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tolerance: float | None = Field(None, gt=0, le=1, description=(
        "relative error a recomputed number may have, in (0, 1], e.g. 0.01"))
    unit_system: str | None = Field(None, description=(
        "pint's unit system for values the symbolic engine writes: SI, mks, cgs, imperial, US, "
        "atomic or Planck"))
    rules: list[str] | None = Field(None, description=(
        f"the rule sets a formula must follow, of {list(physics_rules.RULE_SETS)}"))

    @field_validator("unit_system")
    @classmethod
    def _system(cls, value: str | None) -> str | None:
        return None if value is None else physics_options.unit_system(value)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(physics_rules.validate(tuple(value)))

    def extra(self) -> dict:
        """As ScoringContext.extra carries it to the verifiers."""
        return {"physics": self.model_dump(exclude_none=True)}


class SwarmOptions(BaseModel):
    """`reasoning.swarm` (strategy swarm, server/reasoning/swarm.py): how the problem is split,
    who answers each part and how."""
    model_config = ConfigDict(extra="forbid")

    # the decomposer (a task's, search/swarm/decomposers.py); default: the first that applies
    decomposer: str | None = None
    # the models (base or adapters) that may answer parts; default: the server's
    # --swarm-specialists, else the base and every adapter whose manifest declares skills
    specialists: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    # learned: the trained router (the declarations when it knows none of the specialists);
    # declared: by the manifests' skills
    routing: Literal["learned", "declared"] = "learned"
    # question prefix -> model: a part whose question starts with the prefix goes to that
    # model, whatever the router says (the longest prefix that matches)
    routes: dict[Annotated[str, Field(min_length=1)], str] | None = None
    # each part's strategy (its search options are this request's: n_candidates, beam_width...)
    strategy: SearchStrategyName = "greedy"
    # self_moa: each part answered by n_candidates samples of each of moa_models (default: the
    # routed specialist), aggregated by the verifiers' weighted vote (search/swarm/moa.py)
    mode: Literal["route", "self_moa"] = "route"
    moa_models: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1)
    # levels of decomposition allowed (at most the server's --swarm-max-depth)
    max_depth: int | None = Field(None, ge=0)
    # false: sibling parts one after another (the baseline concurrency is measured against)
    concurrent: bool = True


class ReasoningOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("consensus", mode="before")
    @classmethod
    def _consensus(cls, value: object) -> object:
        """A share in (0, 1], or false for none: 0, true or a string would read as one."""
        if value is None or value is False:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 < value <= 1:
            raise ValueError(f"consensus must be a share of the vote in (0, 1], e.g. 0.95, or "
                             f"false to generate every trace; got {value!r}")
        return float(value)

    strategy: StrategyName = "auto"
    beam_width: int | None = Field(None, ge=1)
    max_depth: int | None = Field(None, ge=1)
    simulations: int | None = Field(None, ge=1)
    n_candidates: int | None = Field(None, ge=1)
    budget_tokens: int | None = Field(None, ge=1)
    max_nodes: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    verifiers: dict[str, float] | None = None
    aggregation: Literal["product", "min", "last", "mean"] = "min"
    # across verifiers: weighted product (weights as exponents) or weighted sum (coefficients)
    combine: Literal["product", "weighted_sum"] = "product"
    # the best path score, or the answer whose finished paths have the highest summed score
    selection: Literal["best", "weighted_vote"] = "best"
    # mcts and tot: rate a new node by the scorer (its partial path) or by a greedy rollout to
    # the end, scored (costlier; every rollout is also a finished candidate). Default: mcts
    # the server's --mcts-evaluation, tot the scorer.
    evaluation: Literal["scorer", "rollout"] | None = None
    # beam, mcts, tot: stop once a finished path scores this much (default --search-stop-score)
    stop_score: float | None = Field(None, gt=0, le=1)
    # mcts: answer greedily first, and search only if the PRM scores that answer below this
    accept_greedy: float | None = Field(None, gt=0, le=1)
    # deepconf (search/strategies/deepconf.py): online (warm-up, then traces aborted below the
    # threshold) or offline (all complete, the most confident vote); the share of traces kept;
    # the warm-up traces (online); a trace's confidence; online, stop once this share agrees
    deepconf_mode: Literal["online", "offline"] | None = None
    keep_share: float | None = Field(None, gt=0, le=1)
    warmup: int | None = Field(None, ge=1)
    confidence_signal: Literal["lowest_group", "mean", "bottom", "tail"] | None = None
    # default 0.95; false: every trace is generated unless its confidence falls
    consensus: float | Literal[False] | None = None
    return_trace: bool = False
    # a streamed chat search also sends the tree's nodes as they are made or change, in
    # chunks of their own (`reasoning_trace`); ignored without `stream`
    stream_trace: bool | None = None
    # where a step ends: "\n", "\n\n", or {"regex": ..., "triggers": [...]}; default: the
    # server's --step-delimiter
    step_delimiter: StepDelimiterOption | None = None
    # a step longer than this is cut there and the next step continues it; default: the
    # server's --max-step-tokens (always within the room max_tokens leaves)
    max_step_tokens: int | None = Field(None, ge=1)
    # how a solution's final answer is read, for voting, stop_score and the probe; default:
    # the server's --answer-extractor
    answer_extractor: AnswerExtractor | None = None
    seed: Seed | None = None
    # the answer comes back as the server's --abstain-message (reasoning.abstained true) when
    # its calibrated confidence is below this
    abstain_below: float | None = Field(None, ge=0, le=1)
    # the confidence an answer should reach (default: the server's --target-confidence)
    target_confidence: float | None = Field(None, ge=0, le=1)
    # auto only: run the server's --escalation-stages until the answer reaches
    # target_confidence (server/reasoning/escalation.py); default: the server's --auto-escalate
    escalate: bool | None = None
    # auto only: this request's stages, cheapest first, instead of the server's
    # --escalation-stages (escalates unless escalate is false, which contradicts it)
    escalation_stages: list[SearchStrategyName] | None = Field(None, min_length=1, max_length=8)
    # bounded-context reasoning: the path in chunks of bounded context (search/chunking.py),
    # for a single pass (greedy) and inside every search strategy but deepconf
    context: ContextOptions | None = None

    # step searches (beam, mcts, tot): the symbolic engine's computed step (a stated formula
    # computed exactly) joins the model's candidates (search/symbolic.py)
    symbolic_steps: bool | None = None
    # the units and physics verifiers' options for this request
    physics: PhysicsOption | None = None

    # strategy swarm only: how the problem is decomposed and solved (SwarmOptions)
    swarm: SwarmOptions | None = None

    @field_validator("escalation_stages")
    @classmethod
    def _distinct_stages(cls, value: list[str] | None) -> list[str] | None:
        return distinct_stages(value)
