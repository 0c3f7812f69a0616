"""Decomposers: what a task declares to split its problems into parts and to integrate the
parts' answers into one. Plugins come from the `deliberate.decomposers` entry-point group (the
built-in registered the same way); one that fails to load is logged and skipped.

`brackets` (the composite demo task's, `training.tasks.composite`): a bracketed question inside
a problem is a sub-problem whose answer takes its place, `Numbers: 3 [Compute: 2*4-1] 25 50
Target: [Compute: 17*3+48]`; brackets nest. A bracket stands for a value: an answer that is a
quantity (`245 kg*m/s`, a physics part's) fills its slot with the number, the unit staying in the
part's own block. The answer integrates every part's solution, each under its question, children
first, so the last `Answer:` line is the whole problem's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from search.swarm.plan import Part

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deliberate.decomposers"


@runtime_checkable
class Decomposer(Protocol):
    name: str

    def decompose(self, question: str) -> Part | None:
        """The problem's parts; None when this decomposer does not apply to the question (a
        part's question with no sub-problem is a tree of one). ValueError: it applies, and the
        question is malformed (the message says how)."""

    def integrate(self, root: Part, questions: Mapping[str, str],
                  solutions: Mapping[str, str]) -> str:
        """The answer's text from every part's question (answers filled in) and solution."""


def slot_value(decomposer: Decomposer | None, answer: str) -> str:
    """What fills a child's slot in its parent's question: the decomposer's `fill` of the
    answer where it has one (optional, so older plugins still load), else the answer as it is."""
    fill = getattr(decomposer, "fill", None)
    return answer if fill is None else fill(answer)


class Brackets:
    name = "brackets"
    OPEN, CLOSE = "[", "]"
    MAX_NESTING = 32  # parsed recursively: a deeper question is refused before parsing
    _QUANTITY = re.compile(r"(-?\d+(?:\.\d+)?)\s+[A-Za-z][\w*/^]*")  # a number, a unit

    def fill(self, answer: str) -> str:
        """A bracket stands for a value: a quantity's number, any other answer as it is."""
        match = self._QUANTITY.fullmatch(answer.strip())
        return match.group(1) if match else answer

    def decompose(self, question: str) -> Part | None:
        if self.OPEN not in question and self.CLOSE not in question:
            return None
        depth = deepest = 0
        for char in question:
            depth += {self.OPEN: 1, self.CLOSE: -1}.get(char, 0)
            deepest = max(deepest, depth)
        if deepest > self.MAX_NESTING:
            raise ValueError(f"sub-problems nest {deepest} levels deep; at most "
                             f"{self.MAX_NESTING} are read")
        part, end = self._part(question, 0, "0")
        if end != len(question):
            raise ValueError(f"an unmatched {self.CLOSE!r} at character {end}; every "
                             f"sub-problem is one {self.OPEN}...{self.CLOSE}")
        return part

    def _part(self, text: str, start: int, id: str) -> tuple[Part, int]:
        """The part that begins at `start`, and where it ends (at its closing bracket, or at
        the end of the text for the root)."""
        segments, children, at, here = [], [], start, start
        while at < len(text):
            char = text[at]
            if char == self.OPEN:
                segments.append(text[here:at])
                child, at = self._part(text, at + 1, f"{id}.{len(children)}")
                if at >= len(text) or text[at] != self.CLOSE:
                    raise ValueError(f"the {self.OPEN!r} of sub-problem {child.id} is never "
                                     "closed")
                children.append(child)
                at += 1
                here = at
                continue
            if char == self.CLOSE:
                break
            at += 1
        segments.append(text[here:at])
        segments = [s.strip() if len(segments) == 1 else s for s in segments]
        if not "".join(segments).strip():
            raise ValueError(f"sub-problem {id} is empty; put a question inside the brackets")
        return Part(id, tuple(segments), tuple(children)), at

    def integrate(self, root: Part, questions: Mapping[str, str],
                  solutions: Mapping[str, str]) -> str:
        blocks = []
        for part in root.walk():
            solution = solutions.get(part.id, "").strip()
            blocks.append(solution if part is root and not root.children
                          else f"{questions[part.id].strip()}\n{solution}")
        return "\n".join(blocks)


def load_decomposers() -> dict[str, Decomposer]:
    """The installed decomposers by name (the built-in first)."""
    found: dict[str, Decomposer] = {Brackets.name: Brackets()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            made = ep.load()()
            if not isinstance(made, Decomposer):
                raise TypeError("it has no decompose/integrate")
            found[ep.name] = made
        except Exception as exc:  # a broken plugin is skipped, not fatal
            log.warning("decomposer plugin %r failed to load (%s: %s); skipped", ep.name,
                        type(exc).__name__, exc)
    return found


def decompose(question: str, decomposers: Mapping[str, Decomposer],
              name: str | None = None) -> tuple[Decomposer | None, Part]:
    """The parts of `question` by the named decomposer, else by the first that applies; a
    question none applies to is a tree of one part (a specialist still answers it)."""
    chosen = [decomposers[name]] if name is not None else list(decomposers.values())
    for decomposer in chosen:
        part = decomposer.decompose(question)
        if part is not None:
            return decomposer, part
    return None, Part.leaf(question)
