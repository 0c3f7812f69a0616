"""Runs a search while handing out its progress: what a streaming response sends as it goes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from collections.abc import AsyncIterator, Awaitable, Callable

from search.problem import SearchProblem, SearchResult


@dataclass(frozen=True)
class TraceNodes:
    """The search tree's nodes made or changed since the last ones (search.tree.trace_entry)."""
    nodes: list[dict]


async def with_progress(run: Callable[[SearchProblem], Awaitable[SearchResult]],
                        problem: SearchProblem, trace: bool = False
                        ) -> AsyncIterator[str | TraceNodes | SearchResult]:
    """Yields each new best path (its text) while `run(problem)` searches, with `trace` the
    tree's new and changed nodes too, then its result. Closing this iterator early (client
    gone) cancels the search, which aborts every engine request it has in flight."""
    updates: asyncio.Queue[str | TraceNodes] = asyncio.Queue()
    on_trace = (lambda nodes: updates.put_nowait(TraceNodes(nodes))) if trace else None
    task = asyncio.create_task(run(dataclasses.replace(problem, on_progress=updates.put_nowait,
                                                       on_trace=on_trace)))
    try:
        while not task.done():
            update = asyncio.create_task(updates.get())
            await asyncio.wait({task, update}, return_when=asyncio.FIRST_COMPLETED)
            if update.done():
                yield update.result()
            else:
                update.cancel()
        while not updates.empty():
            yield updates.get_nowait()
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Increments:
    """What a stream sends for each new best path, so that a client that appends the deltas
    reads each path once: the new text when the path extends the one sent last; a path that is
    not an extension (the search moved to another branch) in full, after a blank line, as a
    fresh attempt."""

    def __init__(self) -> None:
        self._sent = ""

    def delta(self, text: str) -> str:
        sent, self._sent = self._sent, text
        if text.startswith(sent):
            return text[len(sent):]
        return "\n\n" + text
