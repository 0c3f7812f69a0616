"""The demo problems the reasoning benchmarks ask: arithmetic at every level and countdown, drawn
from seed streams apart from each other and below the training streams (>= 1_000_000,
training/components/seeds.py), so that a table is never measured on the problems it was fitted on.
"""

from __future__ import annotations

import argparse

from training.tasks import Problem, get_task

HELD_OUT_SEED = 900_000  # benchmarks.reasoning's held-out problems (and studies of them)
CALIBRATION_SEED = 800_000  # benchmarks.calibrate_router's (and studies that tune defaults)
CONFIDENCE_SEED = 600_000  # benchmarks.calibrate_confidence's (auto_target studies 700_000+)


def bucket_of(problem: Problem) -> str:
    if problem.task == "countdown":
        return "countdown"
    level = problem.difficulty or 1
    return "arith 1-2" if level <= 2 else "arith 3-5" if level <= 5 else "arith 6-8"


def load_problems(per_level: int, countdown: int, seed: int) -> list[Problem]:
    arithmetic = get_task("arithmetic")
    problems = [p for level in arithmetic.LEVELS
                for p in arithmetic.generate(seed + level, per_level, level)]
    return problems + get_task("countdown").generate(seed + 100, countdown)


def add_run_arguments(parser: argparse.ArgumentParser, seed: int) -> None:
    """The model, the problem set (`load_problems`) and the load: flags shared by the benchmarks
    that ask these problems, each drawing from its own seed stream."""
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--per-level", type=int, default=30, help="arithmetic problems per level")
    parser.add_argument("--countdown", type=int, default=120)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--concurrency", type=int, default=16)
