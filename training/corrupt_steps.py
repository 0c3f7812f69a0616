"""Contrastive reward-model data: worked solutions next to copies with one step made wrong the
way the base model errs, labelled by the task's exact step checker.

    python -m training.corrupt_steps --task arithmetic/1-8 --task countdown --problems 20000 \\
        --variants 2 --seed 0 --out-dir runs/corrupt

Why: on base-model rollouts alone, a PRM can score well by position (after the first error
every step is invalid) without reading the step. Here the right and the wrong path share the
prefix and differ in one result, operand or Answer line, so only reading the step separates them.

Writes to --out-dir:
  steps.jsonl        {"prompt", "completions", "exact_labels"} for every worked solution and
                     every variant (`training.prm --labels exact`);
  preferences.jsonl  {"prompt", "chosen": worked solution, "rejected": variant}
                     (`training.reward`).
A variant keeps the steps before the corrupted one, and carries the wrong value on through the
later steps, computed correctly from it, to an `Answer:` line, as the base model does.
Problems come from seed 4_000_000 + --seed, apart from evaluation, pretraining, SFT and rollouts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from training.task_selector import parse_selector, worked_problems
from training.tasks import Problem, step_labels
from training.tasks.base import apply_op

CORRUPT_SEED_BASE = 4_000_000
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.corrupt_steps",
                                description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", required=True, metavar="SELECTOR",
                   help="demo task with optional levels, e.g. arithmetic/1-8 (repeatable)")
    p.add_argument("--problems", type=int, default=1000, help="problems per --task")
    p.add_argument("--variants", type=int, default=2, help="corrupted copies per solution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for selector in args.task:
            parse_selector(selector)
    except ValueError as exc:
        parser.error(str(exc))
    if args.problems < 1 or args.variants < 1:
        parser.error("--problems and --variants must be at least 1")
    step_rows, pair_rows = [], []
    for selector in args.task:
        rng = random.Random(f"{args.seed}:{selector}")  # a task's rows do not depend on others
        for problem, worked in worked_problems(selector, CORRUPT_SEED_BASE + args.seed,
                                               args.problems):
            steps, pairs = rows_for(problem, worked, rng, args.variants)
            step_rows += steps
            pair_rows += pairs
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("steps.jsonl", step_rows), ("preferences.jsonl", pair_rows)):
        with open(args.out_dir / name, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    print(json.dumps({"step_rows": len(step_rows), "pairs": len(pair_rows),
                      "out_dir": str(args.out_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
