"""beam: step-level beam search. Each round every live beam samples `n_candidates` next steps
(all beams' requests together), every new step is scored in one batch, and the `beam_width`
best paths by aggregated score survive; finished paths keep competing until the end, and one
pruned on the way still competes for the answer (a min-aggregated score only falls as a path
grows, so a finished path cut early can outscore the beams finished later)."""

from __future__ import annotations

from dataclasses import dataclass

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from engine.protocol import Engine
from verifiers.scorer import Scorer

NAME = "beam"


@dataclass(frozen=True)
class Params(SearchParams):
    beam_width: int = 3
    n_candidates: int = 3  # sampled next steps per beam and round


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    search = SearchRun(problem, engine, scorer, params)
    beams = [search.tree.root]
    for _ in range(params.max_steps):
        live = [b for b in beams if not (b.final or b.truncated)]
        if not live or search.should_stop():
            break
        children = await search.expand_many(live, params.n_candidates)
        pool = [c for group in children for c in group] + [b for b in beams if b not in live]
        if not pool:
            break
        beams = sorted(pool, key=search.rank_key, reverse=True)[: params.beam_width]
    return await search.conclude(beams + search.finals(), n=params.n_answers)
