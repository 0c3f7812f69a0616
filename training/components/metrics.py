"""Ranking metrics of the reward-model and difficulty evaluations (scipy and sklearn are not
dependencies; both are a few lines)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def auroc(scores: list[float], labels: list[int]) -> float:
    """Probability that a random good item outscores a random bad one (ties count half)."""
    if len(scores) != len(labels):
        raise ValueError(f"auroc needs a label per score; got {len(scores)} and {len(labels)}")
    n_good = sum(1 for y in labels if y)
    n_bad = len(labels) - n_good
    if not n_good or not n_bad:
        return float("nan")
    # Mann-Whitney: the good items' rank sum, less the least it can be, counts the (good, bad)
    # pairs a good item wins; average ranks count a tie as half a win
    rank_sum = sum(r for r, y in zip(ranks(scores), labels) if y)
    return (rank_sum - n_good * (n_good + 1) / 2) / (n_good * n_bad)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            result[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's r of the tie-averaged ranks, as scipy's
    `spearmanr`). nan when either side is constant or there are fewer than 2 points."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs paired values; got {len(x)} and {len(y)}")
    if len(x) < 2:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    mean = (len(x) + 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    var_x = sum((a - mean) ** 2 for a in rx)
    var_y = sum((b - mean) ** 2 for b in ry)
    if var_x == 0 or var_y == 0:
        return float("nan")
    return cov / math.sqrt(var_x * var_y)
