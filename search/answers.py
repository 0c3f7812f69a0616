"""The final answer a solution states, for voting, for telling answers apart (`n` distinct
answers, `stop_score`) and for the difficulty probe's agreement.

Extractors, chosen per model (the `--answer-extractor` setting) or per request
(`reasoning.answer_extractor`):
- `auto` (default): the last `\\boxed{...}`, else the last "Answer: X", else the last number
  (the demo model's "Answer: X" lines read exactly as before);
- `boxed`: the last `\\boxed{...}` (nested braces kept);
- `answer`: the last "Answer: X" (also "the answer is X");
- `last_line`: the last non-blank line;
- `text`: the whole text.
What an extractor returns is normalized (`normalize`) before answers are compared. A solution
from which the extractor reads nothing states no answer: it does not vote; for telling answers
apart, and for the probe, it is its whole normalized text (so free text is compared as text,
never counted as disagreeing with everything).

`vote` is the vote over solutions' answers (self_consistency, best_of_n's weighted vote), which
training's evaluations cast the same way.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

Solution = TypeVar("Solution")

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_BOXED = "\\boxed{"
_TEXT_WRAPPER = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}")


def boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, braces balanced."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for at in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            return text[begin:at]
    return None  # never closed: cut off before the answer was written


def answer_line(text: str) -> str | None:
    for line in reversed(text.strip().splitlines()):
        match = _ANSWER.search(line)
        if match:
            return match.group(1).strip().rstrip(".").strip()
    return None


def last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def last_line(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def auto(text: str) -> str | None:
    for extract in (boxed, answer_line, last_number):
        found = extract(text)
        if found is not None:
            return found
    return None


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "auto": auto, "boxed": boxed, "answer": answer_line, "last_line": last_line,
    "text": lambda text: text if text.strip() else None,
}


def normalize(answer: str) -> str:
    """Case, spacing, `$...$`, `\\text{...}` and a closing period do not make answers differ."""
    answer = _TEXT_WRAPPER.sub(r"\1", answer.strip().strip("$"))
    return " ".join(answer.lower().split()).rstrip(".").strip()


def extract_answer(text: str, extractor: str = "auto") -> str | None:
    """The normalized answer `text` states, by `extractor`; None when it states none."""
    found = EXTRACTORS[extractor](text)
    return None if found is None else normalize(found)


def answer_key(text: str, extractor: str = "auto") -> str:
    """What makes two solutions the same answer: the stated answer, else the whole text
    (normalized)."""
    return extract_answer(text, extractor) or normalize(text)


def vote(solutions: Sequence[Solution], answer: Callable[[Solution], str | None],
         weight: Callable[[Solution], float], rank: Callable[[Solution], float]
         ) -> list[Solution]:
    """One representative per stated `answer` (its best-`rank`ed solution), the answers
    ordered by the summed `weight` of their solutions, ties by the representative's rank (then
    by which answer came first). Solutions that state no answer do not vote; empty when none
    does."""
    groups: dict[str, list[Solution]] = defaultdict(list)
    for solution in solutions:
        stated = answer(solution)
        if stated is not None:
            groups[stated].append(solution)
    ranked = sorted(groups.values(), reverse=True,
                    key=lambda group: (sum(map(weight, group)), max(map(rank, group))))
    return [max(group, key=rank) for group in ranked]
