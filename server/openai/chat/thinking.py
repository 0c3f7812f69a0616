"""A reasoning model's output split into its thinking and its answer (`--reasoning-parser`).

The thinking is what comes before `</think>` (a leading `<think>` dropped), as written; the
answer what follows it, without the newlines that separate it from the thinking. Qwen3 opens
`<think>` itself; an R1 distill's chat template opens it in the prompt, so its output starts
inside the thinking: a prompt that ends with an open `<think>` starts the output there. Output
that opens no thinking (and follows no prompt that did) is all answer; thinking with no
`</think>` was cut off: all thinking.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"


def opens_thinking(prompt: str) -> bool:
    """Whether the rendered prompt leaves the model inside `<think>` (R1 distills' templates)."""
    return prompt.rstrip().endswith(OPEN)


def split_thinking(text: str, opened: bool) -> tuple[str | None, str]:
    """(thinking or None, answer) of a whole output."""
    stripped = text.lstrip()
    if stripped.startswith(OPEN):
        text, opened = stripped[len(OPEN):], True
    if not opened:
        return None, text
    thinking, _, answer = text.partition(CLOSE)
    return thinking, answer.lstrip("\n")


@dataclass
class ThinkingStream:
    """`split_thinking` for an output that arrives in pieces: each piece gives the increments of
    the thinking and of the answer (a tag split across pieces is held back until it is whole)."""

    opened: bool
    _state: str = "start"  # start (nothing seen yet) | thinking | answer
    _held: str = ""
    _answer_started: bool = False

    def feed(self, piece: str) -> tuple[str, str]:
        """(thinking increment, answer increment)."""
        text, self._held = self._held + piece, ""
        thinking = answer = ""
        while text:
            if self._state == "start":
                stripped = text.lstrip()
                if not stripped or OPEN.startswith(stripped):
                    self._held = text  # could still be the opening tag
                    return thinking, answer
                if stripped.startswith(OPEN):
                    text, self._state = stripped[len(OPEN):], "thinking"
                elif self.opened:
                    self._state = "thinking"
                else:  # no thinking: the output is the answer as it is
                    self._state, self._answer_started = "answer", True
            elif self._state == "thinking":
                at = text.find(CLOSE)
                if at >= 0:
                    thinking += text[:at]
                    text, self._state = text[at + len(CLOSE):], "answer"
                    continue
                keep = _partial_suffix(text, CLOSE)
                thinking += text[: len(text) - keep]
                self._held = text[len(text) - keep:]
                return thinking, answer
            else:
                if not self._answer_started:
                    text = text.lstrip("\n")
                    self._answer_started = bool(text)
                answer += text
                text = ""
        return thinking, answer

    def close(self) -> tuple[str, str]:
        """What was held back, once the output has ended."""
        held, self._held = self._held, ""
        thinking = self._state == "thinking" or (self._state == "start" and self.opened)
        return (held, "") if thinking else ("", held)


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that begins `tag` (a tag still arriving)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
