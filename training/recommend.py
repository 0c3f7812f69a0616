"""Recommend a tuning method for a situation (data size, memory, compute budget, goal), and why.

    python -m training.recommend --config training/configs/recommend_demo.yaml \\
        [--examples 50000] [--params 7e9 | --model DIR] [--memory-gib 24] [--compute medium] \\
        [--goal one_task|many_tasks|keep_generic] [--json]

The rules table is training/components/method_choice.py (first match wins; each rule names its
reason and the papers it rests on). Measured figures are cited from training/data/peft.json
(package data, written by benchmarks/peft.py) when that table is committed, never made up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from training.components.config import parse_with_config
from training.components.method_choice import (COMPUTE, GOALS, TABLE, Situation, recommend,
                                               safetensors_parameters)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.recommend",
                                description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, required=False, help="training examples available")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--params", type=float, help="the base model's parameters (e.g. 7e9)")
    size.add_argument("--model", type=Path, help="or a local HF model directory to count them in")
    p.add_argument("--memory-gib", type=float, help="accelerator (or host) memory for training")
    p.add_argument("--compute", choices=COMPUTE, default="medium",
                   help="low: a few hundred optimizer steps; medium: a few thousand; high: "
                        "epochs over a large set")
    p.add_argument("--goal", choices=GOALS, default="one_task",
                   help="one task; many tasks on one base; or one domain keeping generic skills")
    p.add_argument("--weight-bytes", type=float, default=2.0,
                   help="bytes per parameter of the frozen base (2: bf16/fp16; 4: fp32)")
    p.add_argument("--table", type=Path, default=TABLE, help="the measured table to cite")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    problems = []
    if args.examples is None or args.examples < 0:
        problems.append("give --examples N (training examples available)")
    if args.params is None and args.model is None:
        problems.append("give the model's size: --params N or --model DIR")
    if args.memory_gib is None or args.memory_gib <= 0:
        problems.append("give --memory-gib (memory available for training)")
    if problems:
        parser.error("; ".join(problems))
    parameters = args.params if args.params is not None else safetensors_parameters(args.model)
    answer = recommend(Situation(args.examples, parameters, args.memory_gib, args.compute,
                                 args.goal, args.weight_bytes), args.table)
    print(json.dumps(dataclasses.asdict(answer), indent=2) if args.json else answer.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
