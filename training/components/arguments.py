"""Flag groups the tuning recipes share (lora, prompt_tuning, finetune and the label-token
recipes): the model and data, the optimisation, and the accuracy report."""

from __future__ import annotations

import argparse
from pathlib import Path

EVAL_SEED = 424242  # the recipes' accuracy problems (benchmarks.peft serves the same)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="models/demo/base", help="base model directory (HF format)")
    p.add_argument("--dataset", action="append", default=None, metavar="PATH[:WEIGHT]",
                   help="JSONL of prompt/completion, messages or text rows, or "
                        "task:SELECTOR:COUNT[:WEIGHT]; repeat to mix by weight")
    p.add_argument("--out", type=Path, required=False, help="directory to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when > 0")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--eval-fraction", type=float, default=0.05, help="held-out rows for eval loss")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 mixed precision (default: where a GPU has it; fp32 on a CPU)")


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval-task", default=None,
                   help="demo task (and levels, e.g. arithmetic/6-8) whose greedy accuracy to "
                        "report before and after")
    p.add_argument("--eval-count", type=int, default=100, help="fresh problems per task")
    p.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    p.add_argument("--generic-task", action="append", default=None, metavar="SELECTOR",
                   help="a task not tuned for whose accuracy to report before and after "
                        "(forgetting); repeatable")


def data_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if not args.dataset:
        problems.append("no training data: give --dataset PATH[:WEIGHT] (repeatable)")
    if args.out is None:
        problems.append("no output directory: give --out DIR")
    return problems
