"""self_consistency: N complete solutions in one request, then a majority vote over their final
answers (Wang et al. 2023). Ties go to the answer whose best solution scores higher."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from search.answers import extract_answer
from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from search.tree import Node
from server.engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "self_consistency"


@dataclass(frozen=True)
class Params(SearchParams):
    n_candidates: int = 8


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    ends = await search.complete_many(search.tree.root, params.n_candidates)
    votes: dict[str, list[Node]] = defaultdict(list)
    for end in ends:
        answer = extract_answer(problem.delimiter.join(end.steps()))
        if answer is not None:
            votes[answer].append(end)
    ranked = sorted(votes.values(),
                    key=lambda group: (len(group), max(map(search.rank_key, group))),
                    reverse=True)
    # One representative per answer (its best-scored solution), in vote order.
    representatives = [max(group, key=search.rank_key) for group in ranked] or ends
    return await search.conclude(representatives, n=params.n_answers, in_order=bool(votes))
