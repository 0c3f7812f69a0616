"""self_consistency: N complete solutions in one request, then a majority vote over their final
answers (Wang et al. 2023). Ties go to the answer whose best solution scores higher."""

from __future__ import annotations

from dataclasses import dataclass

from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from search.strategies import best_of_n
from engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "self_consistency"


@dataclass(frozen=True)
class Params(best_of_n.Params):
    """best_of_n's: N complete solutions."""


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    ends = await search.complete_many(search.tree.root, params.n_candidates)
    # One vote per solution; a representative per answer (its best-scored solution).
    voted = search.vote(ends, weight=lambda _: 1.0)
    return await search.conclude(voted or ends, n=params.n_answers, in_order=bool(voted))
