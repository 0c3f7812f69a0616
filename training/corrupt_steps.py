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
Problems come from the `corrupt_steps` seed stream, 5_000_000 + --seed
(training/components/seeds.py; 4_000_000 + --seed before issue 22, which `training.difficulty`
also drew from).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from training.components.config import parse_with_config
from training.components.corruption import rows_for
from training.components.jsonl import write_jsonl
from training.components.problems import selector_errors, worked_problems
from training.components.seeds import problem_seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.corrupt_steps",
                                description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", default=None, metavar="SELECTOR",
                   help="demo task with optional levels, e.g. arithmetic/1-8 (repeatable)")
    p.add_argument("--problems", type=int, default=1000, help="problems per --task")
    p.add_argument("--variants", type=int, default=2, help="corrupted copies per solution")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=None)
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    errors = [] if args.task else ["give at least one --task"]
    errors += selector_errors(args.task or [])
    if args.out_dir is None:
        errors.append("--out-dir is required")
    if args.problems < 1 or args.variants < 1:
        errors.append("--problems and --variants must be at least 1")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    errors = check_args(args)
    if errors:
        parser.error("; ".join(errors))
    step_rows, pair_rows = [], []
    for selector in args.task:
        rng = random.Random(f"{args.seed}:{selector}")  # a task's rows do not depend on others
        for problem, worked in worked_problems(selector, problem_seed("corrupt_steps", args.seed),
                                               args.problems):
            steps, pairs = rows_for(problem, worked, rng, args.variants)
            step_rows += steps
            pair_rows += pairs
    write_jsonl(step_rows, args.out_dir / "steps.jsonl")
    write_jsonl(pair_rows, args.out_dir / "preferences.jsonl")
    print(json.dumps({"step_rows": len(step_rows), "pairs": len(pair_rows),
                      "out_dir": str(args.out_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
