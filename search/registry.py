"""Strategies by name, each with its params dataclass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.strategies import beam, best_of_n, deepconf, greedy, mcts, self_consistency, tot
from engine.protocol import Engine
from verifiers.scorer import Scorer

StrategyFn = Callable[[SearchProblem, Engine, Scorer, SearchParams], Awaitable[SearchResult]]


@dataclass(frozen=True)
class Strategy:
    name: str
    run: StrategyFn
    params: type[SearchParams]


STRATEGIES: dict[str, Strategy] = {
    module.NAME: Strategy(module.NAME, module.run, module.Params)
    for module in (greedy, beam, mcts, tot, best_of_n, self_consistency, deepconf)
}
