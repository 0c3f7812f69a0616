"""One step of a worked solution made wrong the way the base model errs (`training.corrupt_steps`):
a digit, a carry, an operand or the `Answer:` line, the error carried on through the later steps,
computed correctly from it, to an `Answer:` line; labelled by the task's exact step checker."""

from __future__ import annotations

import random
import re

from training.tasks import Problem, step_labels
from training.tasks.base import apply_op

_STEP = re.compile(r"^(\d+)([+\-*/])(\d+)=(\d+)$")
KINDS = ("digit", "carry", "operand", "answer")


def _near(rng: random.Random, value: int, kind: str) -> int:
    """A wrong value close to `value`: one or two digits replaced, or off by a power of ten."""
    digits = list(str(value))
    if kind == "carry" or len(digits) == 1 and rng.random() < 0.5:
        return value + rng.choice([-1, 1]) * 10 ** rng.randrange(len(digits))
    for i in rng.sample(range(len(digits)), min(len(digits), rng.choice([1, 1, 2]))):
        leading_zero = i == 0 and len(digits) > 1
        digits[i] = rng.choice([d for d in "0123456789"
                                if d != digits[i] and not (leading_zero and d == "0")])
    return int("".join(digits))


def corrupt(steps: list[str], rng: random.Random, kind: str) -> list[str] | None:
    """A copy of `steps` (operations then `Answer: N`) with one error of `kind`, carried on to
    the end; None when this solution offers no such error (the caller draws another)."""
    ops = [_STEP.match(s) for s in steps[:-1]]
    if not ops or not all(ops):
        return None
    parsed = [[int(m[1]), m[2], int(m[3]), int(m[4])] for m in ops]
    k = rng.randrange(len(parsed))
    if kind == "answer":
        wrong = _near(rng, parsed[-1][3], "digit")
        return steps[:-1] + [f"Answer: {wrong}"] if wrong >= 0 else None
    old = parsed[k][3]
    if kind == "operand":
        side = rng.choice([0, 2])
        parsed[k][side] = _near(rng, parsed[k][side], "digit")
        parsed[k][3] = apply_op(parsed[k][0], parsed[k][1], parsed[k][2])
    else:
        parsed[k][3] = _near(rng, old, kind)
    new = parsed[k][3]
    if new is None or new < 0 or new == old:
        return None
    for step in parsed[k + 1:]:  # the first later use of the old value consumes it
        side = 0 if step[0] == old else 2 if step[2] == old else None
        if side is None:
            continue
        step[side] = new
        old, new = step[3], apply_op(step[0], step[1], step[2])
        if new is None or new < 0:
            return None
        step[3] = new
    body = [f"{a}{op}{b}={c}" for a, op, b, c in parsed]
    return body + [f"Answer: {parsed[-1][3]}"]


def rows_for(problem: Problem, worked: str, rng: random.Random, variants: int
             ) -> tuple[list[dict], list[dict]]:
    """Step rows and preference pairs of one problem: the worked solution and its variants."""
    gold = worked.split("\n")
    steps = [{"prompt": problem.prompt, "completions": gold,
              "exact_labels": step_labels(problem, gold)}]
    pairs, seen = [], {worked}
    for _ in range(variants * 4):  # a few draws per wanted variant: some kinds do not apply
        if len(pairs) == variants:
            break
        bad = corrupt(gold, rng, rng.choice(KINDS))
        if bad is None or "\n".join(bad) in seen:
            continue
        labels = step_labels(problem, bad)
        if all(labels):
            continue  # the change happened to be another valid solution
        seen.add("\n".join(bad))
        steps.append({"prompt": problem.prompt, "completions": bad, "exact_labels": labels})
        pairs.append({"prompt": problem.prompt, "chosen": worked, "rejected": "\n".join(bad)})
    return steps, pairs
