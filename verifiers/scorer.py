"""Scores a batch of steps with a request's verifiers, concurrently, each under a timeout.

A verifier that raises or times out is left out of that request's scores (the product is taken
over the verifiers that answered) and named in `errors`; it never fails the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from verifiers.aggregation import combine
from verifiers.protocol import ScoringContext, StepItem, Verifier

logger = logging.getLogger(__name__)

VERIFIER_ERRORS = Counter("deliberate_verifier_errors_total",
                          "Verifier calls that raised or timed out", ["verifier", "kind"])


@dataclass
class BatchScores:
    combined: list[float]  # one per item
    per_verifier: dict[str, list[float]]  # name -> one per item (only verifiers that answered)
    errors: dict[str, str] = field(default_factory=dict)  # name -> what went wrong


class Scorer:
    def __init__(self, verifiers: Mapping[str, Verifier], weights: Mapping[str, float],
                 timeout_s: float = 10.0) -> None:
        self.verifiers = dict(verifiers)
        self.weights = dict(weights)
        self.timeout_s = timeout_s
        self.errors: dict[str, str] = {}  # accumulated over the request, for its response

    async def score(self, items: Sequence[StepItem],
                    context: ScoringContext = ScoringContext()) -> BatchScores:
        if not items:
            return BatchScores(combined=[], per_verifier={})
        names = [n for n in self.verifiers if n not in self.errors]
        results = await asyncio.gather(*(self._run(n, items, context) for n in names))
        per_verifier = {n: r for n, r in zip(names, results) if r is not None}
        combined = [combine({n: s[i] for n, s in per_verifier.items()}, self.weights)
                    for i in range(len(items))]
        errors = {n: self.errors[n] for n in names if n in self.errors}
        return BatchScores(combined=combined, per_verifier=per_verifier, errors=errors)

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
        except Exception as exc:  # plugin code: any failure degrades this request only
            logger.exception("verifier %r failed", name)
            self._fail(name, "error", f"{type(exc).__name__}: {exc}")
        return None

    def _fail(self, name: str, kind: str, message: str) -> None:
        VERIFIER_ERRORS.labels(verifier=name, kind=kind).inc()
        self.errors[name] = message
