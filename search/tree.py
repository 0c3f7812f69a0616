"""The search tree: one node per step, its scores, and MCTS statistics; the trace clients see."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from search.steps import Step
from verifiers.aggregation import PathAggregation, aggregate_path, path_log_score


@dataclass(eq=False)
class Node:
    id: int
    parent: Node | None
    step: str  # "" for the root; as verifiers read it
    token_ids: tuple[int, ...] = ()  # what the model generated for this step
    final: bool = False  # the path ends here (the model finished the solution)
    truncated: bool = False  # the step or the path was cut by a token limit
    tokens: int = 0  # generated tokens of this step (of all steps, for a finished path)
    stop: str | None = None  # the request's stop string that ended the path here
    confidences: tuple[float, ...] = ()  # each of token_ids' confidence (search.confidence)
    score: float | None = None  # combined verifier score of this step
    symbolic: bool = False  # computed by the symbolic engine, not generated (search/symbolic.py)
    verifier_scores: dict[str, float] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    @property
    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def lineage(self) -> list[Node]:
        """The scored nodes from the first step to this one (root excluded)."""
        nodes: list[Node] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def steps(self) -> tuple[str, ...]:
        return tuple(n.step for n in self.lineage())

    def path_ids(self) -> tuple[int, ...]:
        """The ids the model generated from the first step to this one."""
        return tuple(i for n in self.lineage() for i in n.token_ids)

    def path_confidences(self) -> list[float]:
        """The token confidences from the first step to this one (steps read without
        logprobs add none)."""
        return [c for n in self.lineage() for c in n.confidences]

    def step_scores(self) -> list[float]:
        return [n.score for n in self.lineage() if n.score is not None]

    def path_score(self, how: PathAggregation) -> float:
        return aggregate_path(self.step_scores(), how)

    def path_log_score(self, how: PathAggregation) -> float:
        return path_log_score(self.step_scores(), how)


class Tree:
    def __init__(self) -> None:
        self.root = Node(id=0, parent=None, step="")
        self.nodes: list[Node] = [self.root]

    def add(self, parent: Node, step: str, **fields) -> Node:
        node = Node(id=len(self.nodes), parent=parent, step=step, **fields)
        parent.children.append(node)
        self.nodes.append(node)
        return node

    def add_path(self, parent: Node, steps: Sequence[Step], *, final: bool,
                 truncated: bool, tokens: int, stop: str | None = None) -> Node:
        """A chain of steps under `parent` (a completion); the last node carries the ending."""
        node = parent
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            node = self.add(node, step.text, token_ids=step.token_ids,
                            confidences=step.confidences, final=final and last,
                            truncated=truncated and last, tokens=tokens if last else 0,
                            stop=stop if last else None)
        return node

    def trace(self) -> list[dict]:
        return [trace_entry(n) for n in self.nodes]


def trace_entry(n: Node) -> dict:
    """A node as clients see it (`return_trace`, `stream_trace`)."""
    return {"id": n.id, "parent": None if n.parent is None else n.parent.id,
            "text": n.step, "token_ids": list(n.token_ids), "score": n.score,
            "scores": dict(n.verifier_scores),
            "visits": n.visits, "value": round(n.value, 6) if n.visits else None,
            "final": n.final, **({"symbolic": True} if n.symbolic else {})}


def ucb(child: Node, parent_visits: int, c: float, prior: float | None = None) -> float:
    """UCT (prior None) or PUCT (prior given): exploitation plus an exploration bonus."""
    if prior is None:
        if child.visits == 0:
            return math.inf
        return child.value + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)
    return child.value + c * prior * math.sqrt(max(parent_visits, 1)) / (1 + child.visits)
