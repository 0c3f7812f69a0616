"""Solving a tree of parts: the children of a part concurrently (the engine batches their
requests), then the part with their answers in its slots. One token budget and one deadline
hold for the whole tree: a part starts with an equal share of the tokens neither spent nor held
by the parts in flight, and the time left. A part that fails, or finds the budget or the time
spent, is answered by no one (its error says why) and its parent goes on without its answer:
a failure degrades its branch, not the request. Cancelling the tree (the client left) cancels
every part in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from search.answers import extract_answer
from search.problem import SearchResult
from search.swarm.plan import Part


@dataclass
class Solved:
    part: Part
    question: str  # with the children's answers filled in
    model: str | None = None  # who answered (None: no one did)
    strategy: str | None = None
    result: SearchResult | None = None
    route: str = ""  # why that model
    error: str | None = None
    started_s: float = 0.0  # since the tree started
    ended_s: float = 0.0

    def answer(self, extractor: str) -> str:
        """The part's stated answer ("" when it has none)."""
        if self.result is None:
            return ""
        return extract_answer(self.result.best.text, extractor) or ""


# (part, its question, tokens it may generate, seconds it may take) -> the part solved; an
# exception is the part's failure
Solve = Callable[[Part, str, int | None, float | None], Awaitable[Solved]]


@dataclass
class Tree:
    root: Part
    solved: dict[str, Solved] = field(default_factory=dict)  # part id -> how it went
    wall_s: float = 0.0


async def solve_tree(root: Part, solve: Solve, extractor: str = "auto",
                     budget_tokens: int | None = None, timeout_s: float | None = None,
                     concurrent: bool = True, fill: Callable[[str], str] = str) -> Tree:
    """Every part of `root`'s tree, children before parents; `concurrent=False` runs siblings
    one after another (the baseline the swarm benchmark measures concurrency against); `fill`
    turns a child's stated answer into what its slot in the parent's question reads."""
    tree = Tree(root)
    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    unstarted = sum(1 for _ in root.walk())
    spent = held = 0

    async def one(part: Part) -> str:
        nonlocal unstarted, spent, held
        if concurrent:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(c)) for c in part.children]
            answers = [t.result() for t in tasks]
        else:
            answers = [await one(c) for c in part.children]
        question = part.question([fill(a) for a in answers])
        share = None
        if budget_tokens is not None:
            share = (budget_tokens - spent - held) // max(unstarted, 1)
        unstarted -= 1
        left = None if deadline is None else deadline - time.monotonic()
        at = time.monotonic() - started
        if (share is not None and share <= 0) or (left is not None and left <= 0):
            why = "the token budget is spent" if left is None or left > 0 else "out of time"
            tree.solved[part.id] = Solved(part, question, error=why, started_s=at, ended_s=at)
            return ""
        held += share or 0
        try:
            solved = await solve(part, question, share, left)
        except Exception as exc:  # the part fails, the tree goes on
            solved = Solved(part, question, error=f"{type(exc).__name__}: {exc}")
        finally:
            held -= share or 0
        if solved.result is not None:
            spent += solved.result.stats.generated_tokens
        solved.started_s, solved.ended_s = at, time.monotonic() - started
        tree.solved[part.id] = solved
        return solved.answer(extractor)

    await one(root)
    tree.wall_s = time.monotonic() - started
    return tree
