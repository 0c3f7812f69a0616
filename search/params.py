"""Parameters every strategy shares (budgets, sampling, seed); each strategy extends them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from verifiers.aggregation import PathAggregation


@dataclass(frozen=True)
class SearchParams:
    budget_tokens: int | None = None  # generated tokens, all branches together
    max_nodes: int | None = None  # steps generated
    timeout_s: float | None = None
    seed: int | None = None  # makes the sampled branches reproducible
    temperature: float = 1.0  # for sampled branches; final completions are greedy
    top_p: float = 1.0
    max_step_tokens: int = 512  # a step longer than this is cut; the next step continues it
    max_tokens: int = 256  # of the returned answer
    max_steps: int = 16  # a path this long is finished
    aggregation: PathAggregation = "min"  # path score from step scores
    # the answer: the best path, or the one whose finished paths' scores sum highest
    selection: Literal["best", "weighted_vote"] = "best"
    return_trace: bool = False
    n_answers: int = 1  # distinct answers to return (the request's n)
    # a step search ends once n_answers distinct answers have finished paths scoring this much
    stop_score: float | None = None
    # the learned and exact verifiers' scores of the answer this far apart are reported
    # (SearchResult.verifier_disagreement); None: not compared
    disagreement_threshold: float | None = None
    # confidence signals (search.confidence): top-k logprobs read per generated token, the
    # sliding window of the group confidence and the tail, in tokens
    confidence_top_k: int = 5
    confidence_window: int = 16
    confidence_tail: int = 16
    # step searches: the symbolic engine's computed step joins each expansion's candidates
    # beside the model's own (search/symbolic.py)
    symbolic_steps: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """This strategy's params from a request's options, by name: the keys it has a field
        for; an absent key or None keeps the field's default. Every strategy names a setting
        the same way (`n_candidates`, `beam_width`, `max_depth`, `evaluation`, ...), so one
        mapping serves them all."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names and v is not None})
