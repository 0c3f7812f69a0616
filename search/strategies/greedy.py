"""greedy: one completion at temperature 0, scored like any other answer (the baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "greedy"


@dataclass(frozen=True)
class Params(SearchParams):
    pass


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    end = await search.finish(search.tree.root)
    return await search.conclude([end], n=params.n_answers)
