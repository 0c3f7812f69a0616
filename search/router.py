"""Which strategy a request gets (design.md, "Compute selection").

An explicit strategy wins; `auto` (or none) follows `reasoning_effort` when given, else the
estimated difficulty d: d < low -> greedy, low <= d < high -> beam, d >= high -> mcts.

The thresholds are 0.3 / 0.7 unless a `RouterTable` says better: thresholds fitted per
verifier set on calibration problems (`python -m benchmarks.calibrate_router`), because whether
search pays depends on what scores its branches (learned verifiers that cannot check arithmetic
make search on arithmetic worse than greedy; with the exact `logic` checker it pays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# OpenAI's "minimal" and "none" ask for no reasoning at all: a single greedy pass
EFFORT_STRATEGY = {"none": "greedy", "minimal": "greedy", "low": "greedy", "medium": "beam",
                   "high": "mcts"}


@dataclass(frozen=True)
class Thresholds:
    low: float = 0.3
    high: float = 0.7
    # How an auto-routed mcts runs, when fitted (a request's own reasoning options win):
    # greedy first, kept if the PRM scores it at least `accept_greedy`; at most `budget_tokens`.
    accept_greedy: float | None = None
    budget_tokens: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"router thresholds must satisfy 0 <= low <= high <= 1, got "
                             f"low={self.low}, high={self.high}")
        if self.accept_greedy is not None and not 0.0 < self.accept_greedy <= 1.0:
            raise ValueError(f"accept_greedy must be in (0, 1], got {self.accept_greedy}")
        if self.budget_tokens is not None and self.budget_tokens < 1:
            raise ValueError(f"budget_tokens must be at least 1, got {self.budget_tokens}")


@dataclass(frozen=True)
class RouterTable:
    """Thresholds per verifier set, on the difficulty scale of one estimator."""
    estimator: str
    routes: Mapping[frozenset[str], Thresholds]

    def thresholds_for(self, verifiers: Iterable[str], estimator: str | None
                       ) -> Thresholds | None:
        """The fitted thresholds for these verifiers (names with a non-zero weight), or None
        when the difficulty came from another estimator or the set was not calibrated."""
        if estimator != self.estimator:
            return None
        return self.routes.get(frozenset(verifiers))

    @classmethod
    def from_json(cls, data: Mapping) -> RouterTable:
        """From the `router.json` that `benchmarks.calibrate_router` writes; ValueError names
        what is wrong."""
        try:
            routes = {frozenset(r["verifiers"]): Thresholds(
                float(r["low"]), float(r["high"]), **_mcts_route(r.get("mcts") or {}))
                for r in data["routes"]}
            return cls(estimator=str(data["estimator"]), routes=routes)
        except (KeyError, TypeError) as exc:
            raise ValueError("a router table needs 'estimator' and 'routes': "
                             "[{'verifiers': [...], 'low': x, 'high': y}, ...] "
                             f"({type(exc).__name__}: {exc})") from exc


def _mcts_route(settings: Mapping) -> dict:
    unknown = set(settings) - {"accept_greedy", "budget_tokens"}
    if unknown:
        raise KeyError(f"unknown mcts route settings {sorted(unknown)}")
    return {"accept_greedy": (None if settings.get("accept_greedy") is None
                              else float(settings["accept_greedy"])),
            "budget_tokens": (None if settings.get("budget_tokens") is None
                              else int(settings["budget_tokens"]))}


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
