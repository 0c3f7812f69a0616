"""`logic`: re-computes every arithmetic claim in a step; exact, so a wrong claim scores 0."""

from __future__ import annotations

from collections.abc import Sequence

from verifiers.builtin.claims import evaluate, find_claims
from verifiers.protocol import ScoringContext, StepItem


class LogicVerifier:
    name = "logic"
    exact = True  # an exact check (verifiers/disagreement.py compares it with the learned ones)

    def __init__(self, deps=None) -> None:
        pass

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        return [self.score_step(item.step) for item in items]

    @staticmethod
    def score_step(step: str) -> float:
        """1.0 when every claim holds (or there is none), 0.0 when one is false or uncheckable
        (a division that is not exact is a false claim in integer arithmetic)."""
        for claim in find_claims(step):
            if evaluate(claim.expression) != claim.stated:
                return 0.0
        return 1.0
