"""Which strategy a request gets (design.md, "Compute selection").

An explicit strategy wins; `auto` (or none) follows `reasoning_effort` when given, else the
estimated difficulty d: d < low -> greedy, low <= d < high -> beam, d >= high -> mcts.
"""

from __future__ import annotations

from dataclasses import dataclass

EFFORT_STRATEGY = {"low": "greedy", "medium": "beam", "high": "mcts"}


@dataclass(frozen=True)
class Thresholds:
    low: float = 0.3
    high: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"router thresholds must satisfy 0 <= low <= high <= 1, got "
                             f"low={self.low}, high={self.high}")


def needs_difficulty(strategy: str | None, effort: str | None) -> bool:
    return strategy in (None, "auto") and effort is None


def route(strategy: str | None, effort: str | None, difficulty: float | None,
          thresholds: Thresholds = Thresholds()) -> str:
    if strategy not in (None, "auto"):
        return strategy
    if effort is not None:
        return EFFORT_STRATEGY[effort]
    if difficulty is None:
        raise ValueError("the router needs a difficulty when neither a strategy nor an effort "
                         "is given")
    if difficulty < thresholds.low:
        return "greedy"
    if difficulty < thresholds.high:
        return "beam"
    return "mcts"
