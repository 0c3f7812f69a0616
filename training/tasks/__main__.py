"""Export generated problems as JSONL: `python -m training.tasks --task countdown --count 100
--seed 1 [--difficulty 3] --out problems.jsonl` (fields id, task, prompt, answer, difficulty)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from training.components.config import parse_with_config
from training.components.jsonl import write_jsonl
from training.tasks import TASKS, get_task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.tasks", description=__doc__)
    parser.add_argument("--task", choices=sorted(TASKS), help="required")
    parser.add_argument("--count", type=int, help="required")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", type=int, default=None,
                        help="arithmetic: operations 1..8; countdown: steps 1..5; default: mixed")
    parser.add_argument("--out", help="JSONL file to write (required)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    missing = [f"--{name}" for name in ("task", "count", "out") if getattr(args, name) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    task = get_task(args.task)
    try:
        problems = task.generate(args.seed, args.count, args.difficulty)
    except ValueError as error:
        parser.error(str(error))
    n = write_jsonl((asdict(p) for p in problems), args.out)
    print(f"wrote {n} {args.task} problems to {args.out}")


if __name__ == "__main__":
    main()
