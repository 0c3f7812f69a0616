"""The final answer a solution states, for voting and for telling answers apart."""

from __future__ import annotations

import re

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def extract_answer(text: str) -> str | None:
    """The last "Answer: X" (X normalised), else the last number, else None."""
    for line in reversed(text.strip().splitlines()):
        match = _ANSWER.search(line)
        if match:
            return match.group(1).strip().rstrip(".").strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None
