"""Combining scores: across verifiers (weighted product, or weighted sum) and along a path
(product/min/last/mean).

Across verifiers, `product` (the default) is prod(s_i ** w_i), weights as exponents, taken in log
space so that many verifiers do not underflow; a hard zero from any verifier with a positive
weight prunes the branch (score exactly 0). `weighted_sum` is sum(w_i * s_i) / sum(w_i), weights
as coefficients (the additive form of a process reward, e.g. 0.3 syntax + 0.5 prm + 0.2 logic),
normalised so that the score stays in [0, 1]; a zero lowers the score, it does not prune.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

PathAggregation = Literal["product", "min", "last", "mean"]
PATH_AGGREGATIONS: tuple[str, ...] = ("product", "min", "last", "mean")
Combine = Literal["product", "weighted_sum"]
COMBINES: tuple[str, ...] = ("product", "weighted_sum")


def combine(scores: Mapping[str, float], weights: Mapping[str, float],
            how: Combine = "product") -> float:
    """One score from the verifiers present in `scores` (a missing weight is 1): the weighted
    product prod(s_i ** w_i), or the weighted sum sum(w_i * s_i) / sum(w_i). Verifiers of weight
    0 are left out; with none left the score is 1.0 (no objection)."""
    present = {}
    for name, score in scores.items():
        weight = weights.get(name, 1.0)
        if weight == 0:
            continue
        if not 0.0 <= score <= 1.0 or math.isnan(score):
            raise ValueError(f"verifier {name!r} returned {score}, outside [0, 1]")
        present[name] = (score, weight)
    if how == "product":
        if any(score == 0.0 for score, _ in present.values()):
            return 0.0
        return math.exp(math.fsum(w * math.log(s) for s, w in present.values()))
    if how == "weighted_sum":
        total = math.fsum(w for _, w in present.values())
        if total == 0:
            return 1.0
        return min(math.fsum(w * s for s, w in present.values()) / total, 1.0)
    raise ValueError(f"unknown combine {how!r}; choose one of {COMBINES}")


def path_log_score(step_scores: Sequence[float], how: PathAggregation = "product") -> float:
    """log of `aggregate_path`, -inf for a pruned path: rank long paths by this, since their
    product can underflow to 0.0 as a float while their logs still order them."""
    if how == "product":
        if any(s == 0.0 for s in step_scores):
            return -math.inf
        return math.fsum(math.log(s) for s in step_scores)
    value = aggregate_path(step_scores, how)
    return math.log(value) if value > 0 else -math.inf


def aggregate_path(step_scores: Sequence[float], how: PathAggregation = "product") -> float:
    """One score for a whole path from its per-step scores (1.0 for an empty path)."""
    if not step_scores:
        return 1.0
    if how == "product":
        return math.exp(path_log_score(step_scores, how))
    if how == "min":
        return min(step_scores)
    if how == "last":
        return step_scores[-1]
    if how == "mean":
        return math.fsum(step_scores) / len(step_scores)
    raise ValueError(f"unknown aggregation {how!r}; choose one of {PATH_AGGREGATIONS}")
