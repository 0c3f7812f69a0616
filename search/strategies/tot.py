"""tot: Tree-of-Thought breadth-first search (Yao et al. 2023). Each level, every state in the
frontier proposes `n_candidates` next steps; a value function rates the new states and the best
`beam_width` form the next frontier; after `max_depth` levels the frontier is finished greedily
and the best finished path wins.

Unlike beam, states are rated by a value function of the state, not by the path's aggregate:
"scorer" rates a state by its latest step's score (ToT's per-state evaluation), "rollout" by
the score of its greedy completion (a lookahead; costlier, and its completions are candidates).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from search.tree import Node
from engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "tot"


@dataclass(frozen=True)
class Params(SearchParams):
    beam_width: int = 3  # states kept per level (b, the breadth)
    n_candidates: int = 3  # proposals per state
    max_depth: int = 5
    evaluation: Literal["scorer", "rollout"] = "scorer"


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    frontier: list[Node] = [search.tree.root]
    for _ in range(params.max_depth):
        live = [s for s in frontier if not (s.final or s.truncated)]
        if not live or search.should_stop():
            break
        proposals = [c for group in await search.expand_many(live, params.n_candidates)
                     for c in group]
        rated = await asyncio.gather(*(_value(search, s, params) for s in proposals))
        values = {id(s): v for s, v in zip(proposals, rated)}
        kept = [s for s in frontier if s not in live]
        values.update({id(s): _state_value(s) for s in kept})
        pool = proposals + kept
        if not pool:
            break
        frontier = sorted(pool, key=lambda s: values[id(s)], reverse=True)[: params.beam_width]
    return await search.conclude(frontier + search.finals(), n=params.n_answers)


def _state_value(state: Node) -> float:
    return state.score if state.score is not None else 0.0


async def _value(search: SearchRun, state: Node, params: Params) -> float:
    if params.evaluation == "rollout" and not state.final:
        end = await search.finish(state)
        return end.path_score(params.aggregation)
    return _state_value(state)
