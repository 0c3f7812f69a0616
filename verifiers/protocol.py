"""The Verifier protocol: a name and an async batch method scoring steps in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class StepItem:
    """One step to score: the problem, the path so far (the last step is the one scored)."""

    problem: str
    steps: tuple[str, ...]
    is_final: bool = False

    @property
    def step(self) -> str:
        return self.steps[-1] if self.steps else ""


@dataclass(frozen=True)
class ScoringContext:
    """What a request brings beyond the steps: evidence for `factual`, the caller for `safety`,
    and the conversation the solution answers, for reward models that read it in their own chat
    template (`messages`: {"role", "content"} dicts before the assistant's reply, as the client
    sent them; empty for a bare prompt, whose problem is then the only user turn)."""

    evidence: tuple[str, ...] = ()
    messages: tuple[dict[str, str], ...] = ()
    api_key_id: str | None = None  # the caller's API key name (the tenant), never the key
    user: str | None = None  # the request's `user`
    extra: dict = field(default_factory=dict)


class Verifier(Protocol):
    """`name`, and `score`. A verifier may also set `cost` (an int, 0 when absent): a search's
    scorer asks costlier verifiers only about the items cheaper ones have not already ruled out
    (`verifiers.scorer.Scorer`'s gate); and `exact` (a bool): True for an exact check, False for
    a learned model, which a search compares on its answer (`verifiers.disagreement`); and
    `adapter` (a str): the adapter of the served base it scores with, a name the server then
    reserves, so that no client can unload or replace it over the API."""

    name: str

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        """One score in [0, 1] per item, in order; 0 means the step is certainly wrong."""
        ...
