"""Scores a batch of steps with a request's verifiers, concurrently, each under a timeout.

A verifier that raises or times out is left out of that request's scores (the product is taken
over the verifiers that answered) and named in `errors`; it never fails the request. Where the
engine refused a reward model's request because the solution does not fit in the model's
context, `refused` says so too, so that /v1/verify can give the caller a 400 instead of a score
that leaves that verifier out.

With a `gate`, verifiers run in tiers by their `cost` attribute (0 when absent: a cheap check;
the `prm` 1, a prefill per step; the `orm` 2, a whole solution's prefill), cheapest first, and
each costlier tier judges only the items whose best reachable score (the scores so far, combined
with 1.0 for every verifier not yet asked) reaches the gate; it gives the rest 1.0 (no opinion),
since their score cannot reach the gate whatever the costlier verifiers say. For the weighted
product that bound is the product so far; for a weighted sum it counts the unasked weights as
full marks. Without a gate every verifier judges every item, all concurrently.

`combine` says how verifiers' scores make one (`verifiers.aggregation.combine`): `product` (the
default) or `weighted_sum`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from engine.protocol import ContextExceeded
from verifiers.aggregation import Combine, combine
from verifiers.protocol import ScoringContext, StepItem, Verifier

logger = logging.getLogger(__name__)

VERIFIER_ERRORS = Counter("deliberate_verifier_errors_total",
                          "Verifier calls that raised or timed out", ["verifier", "kind"])
VERIFIER_SKIPPED = Counter("deliberate_verifier_skipped_steps_total",
                           "Steps a costlier verifier was not asked about: the cheaper ones had "
                           "scored them below the search's gate", ["verifier"])


@dataclass
class BatchScores:
    combined: list[float]  # one per item
    per_verifier: dict[str, list[float]]  # name -> one per item (only verifiers that answered)
    errors: dict[str, str] = field(default_factory=dict)  # name -> what went wrong
    # name -> indices of the items the gate kept from it (its 1.0 there is no judgement)
    skipped: dict[str, set[int]] = field(default_factory=dict)


class Scorer:
    def __init__(self, verifiers: Mapping[str, Verifier], weights: Mapping[str, float],
                 timeout_s: float = 10.0, gate: float | None = None,
                 combine: Combine = "product") -> None:
        self.verifiers = dict(verifiers)
        self.weights = dict(weights)
        self.combine = combine
        self.timeout_s = timeout_s
        self.gate = gate
        self.errors: dict[str, str] = {}  # accumulated over the request, for its response
        self.refused: dict[str, str] = {}  # of those, the ones past the model's context

    async def score(self, items: Sequence[StepItem],
                    context: ScoringContext = ScoringContext()) -> BatchScores:
        if not items:
            return BatchScores(combined=[], per_verifier={})
        names = [n for n in self.verifiers if n not in self.errors]
        tiers = self._tiers(names)
        per_verifier: dict[str, list[float]] = {}
        skipped: dict[str, set[int]] = {}
        for k, tier in enumerate(tiers):
            later = [n for t in tiers[k + 1:] for n in t]
            scores, left_out = await self._tier(tier, items, context, per_verifier, later)
            per_verifier.update(scores)
            skipped.update({name: left_out for name in scores if left_out})
        combined = [self._combine({n: s[i] for n, s in per_verifier.items()})
                    for i in range(len(items))]
        errors = {n: self.errors[n] for n in names if n in self.errors}
        return BatchScores(combined=combined, per_verifier=per_verifier, errors=errors,
                           skipped=skipped)

    async def judge(self, name: str, items: Sequence[StepItem],
                    context: ScoringContext = ScoringContext()) -> list[float] | None:
        """One verifier's own scores of `items`, without the gate (None if it failed: the
        failure is recorded as in `score`)."""
        return await self._run(name, items, context) if items else []

    def _tiers(self, names: list[str]) -> list[list[str]]:
        if self.gate is None:
            return [names]
        costs = {n: verifier_cost(self.verifiers[n]) for n in names}
        return [[n for n in names if costs[n] == c] for c in sorted(set(costs.values()))]

    def _combine(self, scores: dict[str, float]) -> float:
        return combine(scores, self.weights, self.combine)

    async def _tier(self, names: list[str], items: Sequence[StepItem], context: ScoringContext,
                    before: dict[str, list[float]], later: list[str]
                    ) -> tuple[dict[str, list[float]], set[int]]:
        """`names`' scores: their own on the items whose best reachable score (`before`'s
        scores, 1.0 for `names` and `later`) reaches the gate (all items when nothing came
        before), 1.0 on the rest; and the indices of the rest."""
        unasked = dict.fromkeys([*names, *later], 1.0)
        passed = [i for i in range(len(items)) if not before or
                  self._combine({**unasked, **{n: s[i] for n, s in before.items()}}) >= self.gate]
        subset = [items[i] for i in passed]
        results = (await asyncio.gather(*(self._run(n, subset, context) for n in names))
                   if subset else [[] for _ in names])
        scores = {}
        for name, found in zip(names, results):
            if found is None:
                continue
            full = [1.0] * len(items)
            for i, score in zip(passed, found):
                full[i] = score
            scores[name] = full
            VERIFIER_SKIPPED.labels(verifier=name).inc(len(items) - len(passed))
        return scores, set(range(len(items))) - set(passed)

    async def _run(self, name: str, items: Sequence[StepItem],
                   context: ScoringContext) -> list[float] | None:
        try:
            scores = await asyncio.wait_for(self.verifiers[name].score(items, context),
                                            self.timeout_s)
            if len(scores) != len(items) or any(not 0.0 <= s <= 1.0 for s in scores):
                raise ValueError(f"returned {len(scores)} scores for {len(items)} items, "
                                 "or a score outside [0, 1]")
            return [float(s) for s in scores]
        except TimeoutError:
            self._fail(name, "timeout", f"timed out after {self.timeout_s:g} s")
        except ContextExceeded as exc:
            self._fail(name, "refused", f"{type(exc).__name__}: {exc}")
            self.refused[name] = str(exc)
        except Exception as exc:  # plugin code: any failure degrades this request only
            logger.exception("verifier %r failed", name)
            self._fail(name, "error", f"{type(exc).__name__}: {exc}")
        return None

    def _fail(self, name: str, kind: str, message: str) -> None:
        VERIFIER_ERRORS.labels(verifier=name, kind=kind).inc()
        self.errors[name] = message


def verifier_cost(verifier: Verifier) -> float:
    """A plugin's `cost`, 0 when it has none or one that is not a number (a plugin's mistake
    must not fail the request)."""
    cost = getattr(verifier, "cost", 0)
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0
