"""The request's `reasoning` object (design.md "Compute selection"), validated field by field;
unknown keys are refused so that a typo does not silently fall back to a default."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# A 64-bit signed integer, as vLLM's API takes: the engine cannot carry a larger seed (a bigger
# one failed inside it, a 500).
Seed = Annotated[int, Field(ge=-2**63, le=2**63 - 1)]

StrategyName = Literal["auto", "greedy", "beam", "mcts", "tot", "best_of_n", "self_consistency"]


class ReasoningOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
    return_trace: bool = False
    step_delimiter: str = Field("\n", min_length=1)
    seed: Seed | None = None
