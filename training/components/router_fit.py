"""Fit the router's thresholds on calibration outcomes (Snell et al. 2024: pick the strategy per
difficulty from held-out measurements, not by rule).

Each calibration problem carries its estimated difficulty and, for greedy, beam and mcts, whether
that strategy answered it right and the tokens it generated. Every (low, high) on a grid routes
each problem (d < low greedy, d < high beam, else mcts) and so has an accuracy and a mean token
cost. The fit keeps the thresholds whose accuracy is at least (1 - `tolerance`) times the best
any of them reaches and, among those, spends the fewest tokens: compute where it pays, none where
it does not. The default tolerance, 0.03, is the accuracy `auto` may give up against always-mcts
(issue 7's 0.97x).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search.router import Thresholds, route

STRATEGIES = ("greedy", "beam", "mcts")


@dataclass(frozen=True)
class CalibrationProblem:
    difficulty: float
    correct: Mapping[str, bool]  # strategy -> answered right
    tokens: Mapping[str, int]  # strategy -> generated tokens


@dataclass(frozen=True)
class Fit:
    low: float
    high: float
    accuracy: float
    tokens: float


def routed(problem: CalibrationProblem, low: float, high: float) -> str:
    """The server's own routing rule (search.router.route), so the fit means what it serves."""
    return route("auto", None, problem.difficulty, Thresholds(low, high))


def evaluate(problems: Sequence[CalibrationProblem], low: float, high: float) -> Fit:
    picks = [routed(p, low, high) for p in problems]
    n = len(problems)
    return Fit(low, high,
               accuracy=sum(p.correct[s] for p, s in zip(problems, picks)) / n,
               tokens=sum(p.tokens[s] for p, s in zip(problems, picks)) / n)


def fit_thresholds(problems: Sequence[CalibrationProblem], tolerance: float = 0.03,
                   step: float = 0.05, reference: float | None = None) -> Fit | None:
    """The cheapest (low, high) whose accuracy is at least (1 - tolerance) times `reference`
    (default: the best any of them reaches, so there is always one); None when none does."""
    if not problems:
        raise ValueError("fitting router thresholds needs at least one calibration problem")
    missing = {s for p in problems for s in STRATEGIES if s not in p.correct or s not in p.tokens}
    if missing:
        raise ValueError(f"every calibration problem needs outcomes for {STRATEGIES}; "
                         f"missing {sorted(missing)}")
    grid = [round(i * step, 6) for i in range(int(round(1 / step)) + 1)]
    fits = [evaluate(problems, low, high) for low in grid for high in grid if high >= low]
    best = max(f.accuracy for f in fits) if reference is None else reference
    # cheapest within tolerance; ties to the more accurate, then to the lower thresholds
    return min((f for f in fits if f.accuracy >= best * (1 - tolerance) - 1e-12),
               key=lambda f: (f.tokens, -f.accuracy, f.low, f.high), default=None)
