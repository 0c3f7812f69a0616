"""The demo arithmetic's state: the expression that remains after the steps so far, as the
`Compute:` question the model knows. `Compute: 48+17*3-29` after `17*3=51` is
`Compute: 48+51-29`. A step that is not a valid reduction (wrong result, not adjacent numbers,
against precedence) leaves no state: the chunk carries the last tokens instead."""

from __future__ import annotations

import re

_QUESTION = re.compile(r"Compute:\s*(\d+(?:\s*[+\-*]\s*\d+)*)\s*$")
_TERM = re.compile(r"\d+|[+\-*]")
_STEP = re.compile(r"^(\d+)\s*([+\-*])\s*(\d+)\s*=\s*(\d+)$")


def remaining(question: str, text: str) -> str | None:
    """The `Compute:` question left after the complete lines of `text` (the last line, cut
    by the chunk, is not read); None when a line is not a valid step of it, or an answer."""
    match = _QUESTION.search(question.strip())
    if match is None:
        return None
    terms = _TERM.findall(match.group(1))
    nums, ops = [int(t) for t in terms[0::2]], terms[1::2]
    for line in text.split("\n")[:-1]:
        line = line.strip()
        if not line:
            continue
        step = _STEP.match(line)
        if step is None or not _reduce(nums, ops, int(step[1]), step[2], int(step[3]),
                                       int(step[4])):
            return None
    return "Compute: " + str(nums[0]) + "".join(o + str(n) for o, n in zip(ops, nums[1:]))


def _reduce(nums: list[int], ops: list[str], a: int, op: str, b: int, c: int) -> bool:
    """Applies `a op b = c` to the expression in place, where precedence allows it."""
    if c != (a + b if op == "+" else a - b if op == "-" else a * b):
        return False
    for i in range(len(ops)):
        if (nums[i], ops[i], nums[i + 1]) != (a, op, b):
            continue
        before = ops[i - 1] if i > 0 else None
        after = ops[i + 1] if i + 1 < len(ops) else None
        # `*` binds tightest; `+`/`-` need no `*` beside them and only `+` (or the start) on
        # the left, since a-(b+c) != a-b+c
        if op == "*" or (after != "*" and before in (None, "+")):
            nums[i:i + 2] = [c]
            del ops[i]
            return True
    return False
