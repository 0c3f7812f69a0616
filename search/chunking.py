"""Bounded-context reasoning: a path generated in chunks, each chunk restarted from the query
plus a bounded carry-over, so that what a request holds stays bounded however long the path
grows (the Markovian Thinker's Delethink, arXiv 2510.06557; InftyThink's summaries, arXiv
2503.06692, for the state carry-over).

A path is still one sequence of generated ids, the answer is all of it, and the verifiers
score its steps as before; only what each engine request *reads* changes. Chunk k holds the
path's ids `path[v_k : v_k + chunk_tokens]` after a prefix:

- chunk 0: the prompt, and the path from its start (v_0 = 0);
- `carry="last"` (Delethink): the prompt again, and the last `carry_tokens` ids of the chunk
  before (v_k = end of chunk k-1 - carry_tokens); each later chunk adds at most
  chunk_tokens - carry_tokens new ids;
- `carry="state"`: a new question that a task or plugin derives from the path so far (for the
  demo arithmetic, `Compute:` the expression that remains, `search.states`), rendered as the
  prompt was, then the path from the last step boundary before the chunk's end (the step the
  chunk cut, carried whole). Where no state can be derived (no step boundary in the chunk, or
  the plugin returns None) the chunk carries the last `carry_tokens` ids instead.

The chunk a path is in follows from its ids alone, so every strategy's requests get it from
the path they extend, and siblings in one chunk share the prefix that vLLM's prefix cache
reuses. A request never generates past its chunk's end; the Sampler goes on in the next
chunk. `max_chunks` bounds the path (Delethink's iterations I).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Carry = Literal["last", "state"]
# (the question, the path's text up to a step boundary) -> the next chunk's question, or None
StateFn = Callable[[str, str], "str | None"]
Render = Callable[[str], Sequence[int]]  # a question -> prompt ids, as the prompt was rendered


@dataclass(frozen=True)
class Chunking:
    chunk_tokens: int  # C: the path's ids one chunk holds, its carry-over included
    carry: Carry = "last"
    carry_tokens: int = 0  # m: the last ids carried ("last"; "state" where no state is found)
    max_chunks: int | None = None  # I
    state: StateFn | None = None  # "state": derives the next chunk's question
    render: Render | None = None  # "state": renders it as the prompt was rendered
    boundary: str = "\n"  # "state": where a step ends (the search's delimiter)
    # a thinking model's opening tag: a path that starts with it keeps it in every chunk (the
    # path's ids up to it, after the prompt), so that a chunk boundary falls inside the
    # thinking and every chunk goes on thinking, as Delethink's prompts do
    opening: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be at least 1, got {self.chunk_tokens}")
        if not 0 <= self.carry_tokens < self.chunk_tokens:
            raise ValueError(f"carry_tokens ({self.carry_tokens}) must be below chunk_tokens "
                             f"({self.chunk_tokens}): a chunk holds its carry-over and must "
                             "have room to write after it")
        if self.carry == "state" and (self.state is None or self.render is None):
            raise ValueError("a state carry-over needs a state function and a renderer")


@dataclass(frozen=True)
class View:
    """What a request extending a path reads: `prefix` then `path[start:]`; it may generate up
    to `end - len(path)` ids before the chunk is full."""
    prefix: tuple[int, ...]
    start: int
    end: int
    index: int  # the chunk's number, 0 first

    def prompt(self, path: Sequence[int]) -> list[int]:
        return [*self.prefix, *path[self.start:]]

    def room(self, path: Sequence[int]) -> int:
        return self.end - len(path)


class Chunker:
    """The chunks of one problem's paths (`Chunking`), with what each chunk's prefix is."""

    def __init__(self, chunking: Chunking, question: str, prompt_ids: Sequence[int],
                 decode: Callable[[Sequence[int]], str]) -> None:
        self.chunking = chunking
        self.question = question
        self.prompt_ids = tuple(prompt_ids)
        self.decode = decode
        self._carried: dict[tuple[int, ...], tuple[tuple[int, ...], int]] = {}

    def view(self, path: Sequence[int]) -> View | None:
        """The chunk the next id of `path` falls in; None when `max_chunks` are full."""
        c = self.chunking
        view = View(self.prompt_ids, 0, c.chunk_tokens, 0)
        while len(path) >= view.end:
            if c.max_chunks is not None and view.index + 1 >= c.max_chunks:
                return None
            prefix, start = self._carry(tuple(path[:view.end]), view.start)
            view = View(prefix, start, start + c.chunk_tokens, view.index + 1)
        return view

    def chunks(self, path: Sequence[int]) -> int:
        """How many chunks the path spans (1 for a path inside the first)."""
        view = self.view(path[:-1]) if path else None
        return 1 if view is None else view.index + 1

    def _carry(self, done: tuple[int, ...], start: int) -> tuple[tuple[int, ...], int]:
        """The next chunk's (prefix, start) after the chunk that holds `done[start:]`."""
        if done not in self._carried:
            self._carried[done] = self._state(done, start) or self._last(done)
        return self._carried[done]

    def _last(self, done: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        start = len(done) - self.chunking.carry_tokens
        head = self._head(done)
        return self.prompt_ids + (head if len(head) <= start else ()), start

    def _head(self, done: tuple[int, ...]) -> tuple[int, ...]:
        """The path's opening tag with what precedes it (`Chunking.opening`), or nothing."""
        opening = self.chunking.opening
        if opening is None:
            return ()
        for i in range(1, min(len(done), 16) + 1):
            text = self.decode(done[:i])
            if opening in text:
                return done[:i]
            if text.strip() and not opening.startswith(text.strip()):
                return ()
        return ()

    def _state(self, done: tuple[int, ...], start: int) -> tuple[tuple[int, ...], int] | None:
        c = self.chunking
        if c.carry != "state":
            return None
        cut = self._last_boundary(done, start)
        if cut is None:
            return None
        question = c.state(self.question, self.decode(done[:cut]))  # type: ignore[misc]
        if question is None:
            return None
        return tuple(c.render(question)), cut  # type: ignore[misc]

    def _last_boundary(self, done: tuple[int, ...], start: int) -> int | None:
        """The index after the last id in `done[start:]` whose text holds the step boundary
        (an id that ends a step), or None; never `start` itself (no progress)."""
        for i in range(len(done), start, -1):
            if self.chunking.boundary in self.decode(done[i - 1:i]):
                return i
        return None
