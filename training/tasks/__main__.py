"""Export generated problems as JSONL: `python -m training.tasks --task countdown --count 100
--seed 1 [--difficulty 3] --out problems.jsonl` (fields id, task, prompt, answer, difficulty)."""

from __future__ import annotations

import argparse

from training.tasks import TASKS, get_task, write_jsonl


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.tasks", description=__doc__)
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", type=int, default=None,
                        help="arithmetic: operations 1..8; countdown: steps 1..5; default: mixed")
    parser.add_argument("--out", required=True, help="JSONL file to write")
    args = parser.parse_args(argv)
    task = get_task(args.task)
    try:
        problems = task.generate(args.seed, args.count, args.difficulty)
    except ValueError as error:
        parser.error(str(error))
    n = write_jsonl(problems, args.out)
    print(f"wrote {n} {args.task} problems to {args.out}")


if __name__ == "__main__":
    main()
