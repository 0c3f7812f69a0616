"""Scores every step of a solution in one batch per verifier, then aggregates.

A verification is admitted as a single pass is (server/admission.py, the single-pass lane): a
reward model's prefill competes with generation for the same engine. It costs the tokens of the
problem and the completion once for each verifier that reads them with a model (a `cost` above
0: the PRM, the ORM, configured reward models); the cheap checks cost nothing beyond the lane's
minimum of one token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from search.steps import split_text
from server.admission import SINGLE, Admission
from server.errors import bad_request
from server.reasoning.options import step_delimiter
from server.verify.protocol import StepScore, VerifyRequest, VerifyResponse
from verifiers.aggregation import Combine, aggregate_path
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierRegistry
from verifiers.scorer import Scorer, verifier_cost


class VerifyService:
    def __init__(self, registry: VerifierRegistry, default_weights: dict[str, float],
                 timeout_s: float, admission: Admission,
                 encode: Callable[[str], Sequence[int]]) -> None:
        self.registry = registry
        self.default_weights = default_weights
        self.timeout_s = timeout_s
        self.admission = admission
        self._encode = encode  # the served model's tokenizer, to count a verification's cost

    def weights_for(self, requested: dict[str, float] | None,
                    param: str = "verifiers") -> dict[str, float]:
        weights = self.default_weights if requested is None else requested
        if not weights:
            raise bad_request(f"{param} is empty: name at least one, e.g. {{\"logic\": 1}}",
                              param=param)
        unknown = sorted(set(weights) - set(self.registry.names()))
        if unknown:
            raise bad_request(f"unknown verifier(s) {unknown} in {param}; available: "
                              f"{self.registry.names()}", param=param)
        negative = sorted(name for name, w in weights.items() if w < 0)
        if negative:
            raise bad_request(f"verifier weights must be >= 0 (exponents or coefficients); "
                              f"{negative} are negative", param=param)
        return dict(weights)

    def scorer(self, weights: dict[str, float], gate: float | None = None,
               combine: Combine = "product") -> Scorer:
        """A scorer over `weights`' verifiers (validated by `weights_for`); one per request.
        `gate`: see `Scorer` (searches only: /v1/verify reports every verifier's own score)."""
        return Scorer({name: self.registry.get(name) for name in weights}, weights,
                      self.timeout_s, gate=gate, combine=combine)

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        weights = self.weights_for(request.verifiers)
        steps = split_text(request.completion, step_delimiter(request.step_delimiter))
        if not steps:
            raise bad_request("the completion has no steps (only delimiters and spaces)",
                              param="completion")
        problem, messages = _problem(request)
        items = [StepItem(problem=problem, steps=tuple(steps[: i + 1]),
                          is_final=i == len(steps) - 1) for i in range(len(steps))]
        scorer = self.scorer(weights, combine=request.combine)
        ticket = self.admission.ticket()
        try:
            await ticket.enter(SINGLE, self.cost(weights, problem, messages, request.completion))
            extra = request.physics.extra() if request.physics is not None else {}
            batch = await scorer.score(items, ScoringContext(evidence=tuple(request.evidence),
                                                             messages=messages, extra=extra))
        finally:
            ticket.release()
        if scorer.refused:  # the caller's input, not a broken plugin: say what to change
            name, why = next(iter(scorer.refused.items()))
            raise bad_request(f"verifier {name!r} cannot score this completion: {why} Shorten "
                              "the prompt or the completion, or leave that verifier out.",
                              param="completion")
        step_scores = [
            StepScore(text=step, scores={n: s[i] for n, s in batch.per_verifier.items()},
                      score=batch.combined[i])
            for i, step in enumerate(steps)
        ]
        return VerifyResponse(
            steps=step_scores,
            verifier_scores={n: aggregate_path(s, request.aggregation)
                             for n, s in batch.per_verifier.items()},
            score=aggregate_path(batch.combined, request.aggregation),
            aggregation=request.aggregation,
            combine=request.combine,
            verifier_errors=scorer.errors,
        )

    def cost(self, weights: dict[str, float], problem: str,
             messages: tuple[dict[str, str], ...], completion: str) -> int:
        """Admission's charge (the module's docstring says what it counts)."""
        readers = sum(verifier_cost(self.registry.get(name)) > 0 for name in weights)
        if not readers:
            return 0
        asked = "\n".join(m["content"] for m in messages) if messages else problem
        return readers * (len(self._encode(asked)) + len(self._encode(completion)))


def _problem(request: VerifyRequest) -> tuple[str, tuple[dict[str, str], ...]]:
    """The problem verifiers see, and the conversation reward models read."""
    if (request.prompt is None) == (request.messages is None):
        raise bad_request("give the problem as prompt or the conversation as messages (one of "
                          "them)", param="prompt")
    if request.prompt is not None:
        return request.prompt, ()
    messages = tuple({"role": m.role, "content": m.text()} for m in request.messages)
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users:
        raise bad_request("messages has no user turn: the problem is the last user message",
                          param="messages")
    return users[-1].strip(), messages
