"""Budgets a search checks between rounds: tokens, nodes, wall time. A round already sent to the
engine finishes; the search then returns the best answer it has (anytime)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from search.params import SearchParams
from search.problem import SearchStats


@dataclass
class Budget:
    params: SearchParams
    stats: SearchStats
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def exhausted(self) -> str | None:
        """The name of the budget that ran out, or None."""
        p, s = self.params, self.stats
        if p.budget_tokens is not None and s.generated_tokens >= p.budget_tokens:
            return "budget_tokens"
        if p.max_nodes is not None and s.nodes >= p.max_nodes:
            return "max_nodes"
        if p.timeout_s is not None and time.monotonic() - self.started >= p.timeout_s:
            return "timeout_s"
        return None

    def stop_reason(self) -> str | None:
        """`exhausted`, remembered in the stats as the reason the search stopped."""
        reason = self.exhausted()
        if reason is not None:
            self.stats.stopped_by = self.stats.stopped_by or reason
        return reason

    def tokens_left(self) -> int | None:
        if self.params.budget_tokens is None:
            return None
        return max(self.params.budget_tokens - self.stats.generated_tokens, 0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started
