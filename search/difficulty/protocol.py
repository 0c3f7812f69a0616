"""The DifficultyEstimator protocol: a name and an async estimate in [0, 1] (1 = hardest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from search.problem import SearchProblem


@dataclass(frozen=True)
class Estimate:
    difficulty: float  # in [0, 1]: how likely a single greedy answer is wrong
    generated_tokens: int = 0  # sampled to estimate it (the response counts them as reasoning)


class DifficultyEstimator(Protocol):
    name: str

    async def estimate(self, problem: SearchProblem) -> Estimate | float:
        """The difficulty, as an `Estimate` or a bare float when nothing was generated."""
        ...


def as_estimate(value: Estimate | float) -> Estimate:
    if isinstance(value, Estimate):
        return value
    return Estimate(difficulty=float(value))
