"""Where a step ends, and a completion cut into steps at token boundaries.

A step is what the model wrote up to the first delimiter after it wrote something: leading
blank lines belong to the step they precede (a blank line between steps is not a step). The
delimiter is a literal ("\\n", "\\n\\n") or a regular expression with literal `triggers`: vLLM
stops only on literal strings, so a search stops on the triggers (default "\\n") and a step ends
at the first trigger where the text so far ends with a match of the pattern (e.g.
`\\n\\s*\\n`: a blank line, spaces allowed); at any other trigger the step goes on in another
request. A step's ids are all that the model generated for it, the delimiter's tokens included,
so a path's ids are exactly what the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import regex

from engine.protocol import InvalidEngineRequest

Decode = Callable[[Sequence[int]], str]
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t\r\f\v]*\n)+")
# A request's pattern runs on text the model writes: a pattern that backtracks without end
# fails that request (`regex` can stop a match; `re` cannot).
MATCH_TIMEOUT_S = 0.25


class SlowStepPattern(InvalidEngineRequest):
    """A regex step delimiter took too long to match: the caller's pattern is at fault."""


@dataclass(frozen=True)
class StepDelimiter:
    text: str = "\n"  # a literal delimiter (when `pattern` is None)
    pattern: str | None = None  # a regular expression
    triggers: tuple[str, ...] = ("\n",)  # literal stop strings for `pattern`

    def __post_init__(self) -> None:
        if self.pattern is None and not self.text:
            raise ValueError("a step delimiter cannot be empty")
        if self.pattern is not None:
            if not self.triggers or not all(self.triggers):
                raise ValueError("a regex step delimiter needs non-empty triggers")
            regex.compile(self.pattern)  # a bad pattern fails here (its own positions), not
            self._regex  # noqa: B018 -- mid-search

    @classmethod
    def of(cls, value: str | Mapping | StepDelimiter) -> StepDelimiter:
        """From a setting or request value: a literal string, or {"regex": pattern,
        "triggers": [...]} (triggers default to a newline)."""
        if isinstance(value, StepDelimiter):
            return value
        if isinstance(value, str):
            return cls(text=value)
        return cls(pattern=value["regex"], triggers=tuple(value.get("triggers") or ("\n",)))

    @cached_property
    def _regex(self) -> regex.Pattern:
        return regex.compile(f"(?:{self.pattern})\\Z")

    @property
    def stops(self) -> tuple[str, ...]:
        """The stop strings a step request ends on."""
        return self.triggers if self.pattern is not None else (self.text,)

    def match(self, text: str) -> tuple[int, int] | None:
        """(start, end) in `text` of the delimiter that ends its first step, or None when the
        step has not ended: nothing but blank space yet, or no delimiter after it."""
        content = len(text) - len(text.lstrip())
        if content == len(text):
            return None
        if self.pattern is None:
            at = text.find(self.text, content)
            return None if at < 0 else (at, at + len(self.text))
        ends = sorted({at + len(t) for t in self.triggers
                       for at in _occurrences(text, t, content)})
        for end in ends:
            try:
                found = self._regex.search(text, 0, end, timeout=MATCH_TIMEOUT_S)
            except TimeoutError as exc:
                raise SlowStepPattern(f"the step_delimiter regex {self.pattern!r} took over "
                                      f"{MATCH_TIMEOUT_S} s to match a step; simplify it") \
                    from exc
            if found is not None and found.start() >= content:
                return found.start(), end
        return None

    def view(self, text: str) -> str:
        """A step as verifiers read it: its text before the delimiter, without the blank lines
        before it or the space after it (indentation kept)."""
        found = self.match(text)
        return trim(text if found is None else text[: found[0]])


def trim(text: str) -> str:
    """Without the blank lines before it or the space after it (indentation kept)."""
    return _LEADING_BLANK_LINES.sub("", text).rstrip()


def _occurrences(text: str, needle: str, start: int) -> list[int]:
    found, at = [], text.find(needle, start)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


@dataclass(frozen=True)
class Step:
    text: str  # what verifiers read (`StepDelimiter.view`)
    token_ids: tuple[int, ...]  # what the model generated for it, the delimiter included
    # each token's confidence (search.confidence), when the engine returned top-k logprobs
    confidences: tuple[float, ...] = ()


def split_completion(ids: Sequence[int], delimiter: StepDelimiter, decode: Decode,
                     thinking_end: str | None = None,
                     confidences: Sequence[float] = ()) -> list[Step]:
    """`ids` (a completion) cut into steps where `delimiter` ends each one, at the token that
    completes the delimiter (as a stop string would have stopped there). Blank space before a
    step is part of it; blank space after the last step is kept with that step. With
    `thinking_end` ("</think>"), the step in which the thinking ends holds the rest: a
    reasoning model's steps are its thinking, and its answer is not cut up. `confidences`
    (one per id, or none) are cut with the ids."""
    steps: list[Step] = []
    rest = list(ids)
    confs = list(confidences) if len(confidences) == len(ids) else []
    while rest:
        text = decode(rest)
        found = delimiter.match(text)
        cut = len(rest) if found is None else _tokens_covering(rest, found[1], decode)
        ends = -1 if thinking_end is None else text.find(thinking_end)
        if ends >= 0 and (found is None or ends < found[1]):
            cut = len(rest)
        piece, piece_confs = rest[:cut], tuple(confs[:cut])
        view = delimiter.view(decode(piece)) if cut < len(rest) or ends < 0 else trim(text)
        if not view and steps:  # trailing blank space: the last step's
            last = steps.pop()
            steps.append(Step(last.text, last.token_ids + tuple(piece),
                              last.confidences + piece_confs))
        elif view:
            steps.append(Step(view, tuple(piece), piece_confs))
        rest, confs = rest[cut:], confs[cut:]
    return steps


def _tokens_covering(ids: Sequence[int], chars: int, decode: Decode) -> int:
    """The fewest leading tokens of `ids` whose text has at least `chars` characters."""
    low, high = 1, len(ids)
    while low < high:
        mid = (low + high) // 2
        if len(decode(ids[:mid])) >= chars:
            high = mid
        else:
            low = mid + 1
    return low


def split_text(text: str, delimiter: StepDelimiter) -> list[str]:
    """The steps of a whole text as verifiers read them (`StepDelimiter.view`), cut where
    `delimiter` ends each one: how /v1/verify reads a completion a client sends."""
    steps = []
    while text:
        found = delimiter.match(text)
        cut = len(text) if found is None else found[1]
        view = delimiter.view(text[:cut])
        if view:
            steps.append(view)
        text = text[cut:]
    return steps
