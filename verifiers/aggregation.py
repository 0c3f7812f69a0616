"""Combining scores: across verifiers (weighted product) and along a path (product/min/last/mean).

Products are taken in log space so that long paths and many verifiers do not underflow; a hard
zero from any verifier with a positive weight prunes the branch (score exactly 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

PathAggregation = Literal["product", "min", "last", "mean"]
PATH_AGGREGATIONS: tuple[str, ...] = ("product", "min", "last", "mean")


def combine(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """prod(s_i ** w_i) over the verifiers present in `scores` (weights as exponents)."""
    log_total = 0.0
    for name, score in scores.items():
        weight = weights.get(name, 1.0)
        if weight == 0:
            continue
        if not 0.0 <= score <= 1.0 or math.isnan(score):
            raise ValueError(f"verifier {name!r} returned {score}, outside [0, 1]")
        if score == 0.0:
            return 0.0
        log_total += weight * math.log(score)
    return math.exp(log_total)


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
