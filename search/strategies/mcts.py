"""mcts: Monte Carlo tree search over steps.

Each simulation selects a path from the root by UCT or PUCT (`tree_policy`), expands its leaf
by sampling `n_candidates` next steps in one request, evaluates the new nodes (by the scorer: the
aggregated score of the partial path; or by a greedy rollout to the end, scored, which makes
every rollout a finished candidate), and backpropagates the values to the root. A node at
`max_depth` steps is finished greedily once; its finished path is its value from then on. The
answer is the best finished path found (or the best-valued leaf, finished greedily, if the
budget ran out first).

PUCT's prior for a child is its step score normalised over its siblings.

Progressive widening (Coulom 2007): a node visited v times may hold up to
ceil(n_candidates * (v / n_candidates) ** widening) children, so selection stops at a node that has
room and samples `n_candidates` more steps there; a node whose widening found no new step is not
widened again. Without it the first expansion fixes a node's alternatives for good: three
first steps of a countdown problem that all lead nowhere leave the search nothing to try."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Literal

from search.params import SearchParams
from search.problem import SearchProblem, SearchResult
from search.run import SearchRun
from search.tree import Node, ucb
from engine.protocol import Engine
from verifiers.aggregation import aggregate_path
from verifiers.scorer import Scorer

NAME = "mcts"


@dataclass(frozen=True)
class Params(SearchParams):
    max_depth: int = 5
    simulations: int = 16
    # children sampled per expansion. Two, not three: with widening a node that keeps being
    # visited gets more anyway, so a third rollout is spent before the search knows the node is
    # worth it. The mcts_sweep study (benchmarks/studies/results/mcts_sweep.md) chose 2 x 16
    n_candidates: int = 2
    tree_policy: Literal["uct", "puct"] = "puct"  # the selection rule
    c: float = 1.0  # exploration weight
    evaluation: Literal["scorer", "rollout"] = "scorer"
    widening: float = 0.5  # exponent of progressive widening; 0 never widens
    # Greedy first: the greedy answer stands, and nothing is searched, when its `accept_by`
    # verifier scores it at least this (the product of its step scores; the combined score when
    # that verifier is not among the request's). None: search at once. The greedy attempt's
    # tokens count against the budget; a search that follows starts from a fresh tree.
    accept_greedy: float | None = None
    accept_by: str = "prm"


async def run(problem: SearchProblem, engine: Engine, scorer: Scorer,
              params: Params) -> SearchResult:
    first = greedy = None
    if params.accept_greedy is not None and params.n_answers == 1:
        first = SearchRun(problem, engine, scorer, params)
        greedy = await first.finish(first.tree.root)
        if acceptance(greedy, params.accept_by) >= params.accept_greedy:
            first.stats.stopped_by = "accept_greedy"
            return await first.conclude([greedy])
    # A fresh tree: seeded with the rejected greedy path, the search spent its simulations
    # around that path (calibration countdown problems, budget 450: 50 of 120 solved; 57 fresh).
    search = SearchRun(problem, engine, scorer, params)
    if first is not None:
        search.carry(first)
    saturated: set[int] = set()  # nodes whose widening sampled nothing new
    for _ in range(params.simulations):
        if search.should_stop():
            break
        leaf = _select(search.tree.root, params, saturated)
        if _terminal(leaf, params):
            values = [(leaf, await _leaf_value(search, leaf, params))]
        else:
            children = await search.expand(leaf, params.n_candidates)
            if not children:  # the samples only repeated known steps or ended the path
                saturated.add(leaf.id)
                # A widened node learned nothing new; a bare leaf is valued as it stands.
                values = ([] if leaf.children
                          else [(leaf, await _leaf_value(search, leaf, params))])
            else:
                rated = await asyncio.gather(*(_evaluate(search, c, params)
                                               for c in children))
                values = list(zip(children, rated))
        for node, value in values:
            _backpropagate(node, value)
    # a search that finished nothing within what the greedy attempt left of the budget still
    # answers with that attempt rather than a partial path
    finished = search.finals() or ([greedy] if first is not None and greedy.final else [])
    if finished:
        return await search.conclude(finished, n=params.n_answers)
    leaves = [n for n in search.tree.nodes[1:] if not n.children]
    leaves.sort(key=lambda n: n.value, reverse=True)
    return await search.conclude(leaves or [search.tree.root], n=params.n_answers,
                                 in_order=True)


def acceptance(end: Node, verifier: str) -> float:
    """The product of `verifier`'s step scores along the path to `end` (the combined step
    scores where it gave none: not among the request's verifiers, or kept from a step that
    cheaper verifiers had ruled out by the scorer's gate)."""
    lineage = end.lineage()
    if not lineage:  # the model answered nothing
        return 0.0
    return aggregate_path([n.verifier_scores.get(verifier, n.score or 0.0) for n in lineage],
                          "product")


def _terminal(node: Node, params: Params) -> bool:
    return node.final or node.truncated or node.depth >= params.max_depth


def _width(node: Node, params: Params) -> int:
    """How many children `node` may have at its visit count (progressive widening; none beyond
    its first expansion without it, however few distinct steps that sampled)."""
    if params.widening <= 0:
        return 0
    visits = max(node.visits, params.n_candidates)
    return math.ceil(params.n_candidates * (visits / params.n_candidates) ** params.widening)


def _select(root: Node, params: Params, saturated: set[int]) -> Node:
    """Descends by the selection rule to a node to expand (a leaf, or one with room to widen)
    or to re-evaluate (a terminal)."""
    node = root
    while node.children and not _terminal(node, params):
        if node.id not in saturated and len(node.children) < _width(node, params):
            return node
        total = sum(c.score or 0.0 for c in node.children) or 1.0
        node = max(node.children, key=lambda c: ucb(
            c, node.visits, params.c,
            prior=(c.score or 0.0) / total if params.tree_policy == "puct" else None))
    return node


async def _evaluate(search: SearchRun, node: Node, params: Params) -> float:
    if params.evaluation == "rollout" or _terminal(node, params):
        return await _leaf_value(search, node, params)
    return node.path_score(params.aggregation)


async def _leaf_value(search: SearchRun, node: Node, params: Params) -> float:
    """The score of the finished path through `node` (`SearchRun.finish` completes a node
    greedily once, and reuses a rollout that passed through it)."""
    return (await search.finish(node)).path_score(params.aggregation)


def _backpropagate(node: Node | None, value: float) -> None:
    while node is not None:
        node.visits += 1
        node.value_sum += value
        node = node.parent
