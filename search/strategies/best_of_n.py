"""best_of_n: N complete solutions in one request (n = N), then the best by path score, or
(`selection="weighted_vote"`) the answer whose solutions' path scores sum highest: Li et al.
2023's weighted vote, "best-of-N weighted" in Snell et al. 2024. The vote keeps what majority
voting gets right where the verifiers cannot tell solutions apart, and what the verifiers get
right where they can."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "best_of_n"


@dataclass(frozen=True)
class Params(SearchParams):
    n_candidates: int = 8  # complete solutions sampled

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        # n distinct answers need at least n solutions
        params = super().from_options(options)
        return dataclasses.replace(params, n_candidates=max(params.n_candidates,
                                                            params.n_answers))


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    ends = await search.complete_many(search.tree.root, params.n_candidates)
    return await search.conclude(ends, n=params.n_answers)
