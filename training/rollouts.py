"""Sample solutions with vLLM offline and turn them into reward-model training data.

    python -m training.rollouts --model models/demo/base --task arithmetic/3-8 --task countdown \\
        --problems 100 --samples 8 --continuations 4 --out-dir /tmp/rollouts

Writes to --out-dir:
  preferences.jsonl  {"prompt", "chosen", "rejected"}: right and wrong solutions of one problem
                     (for `training.reward`);
  steps.jsonl        {"prompt", "completions": [step, ...], "labels": [0|1, ...],
                     "soft_labels": [0..1, ...], "exact_labels": [0|1, ...]}: Math-Shepherd
                     labels (for `training.prm`): a step is good if continuations sampled from
                     the prefix ending at it reach the right answer (hard: any does; soft: the
                     fraction that do); exact_labels are the task's step checker's verdicts;
  summary.json       counts, sample accuracy, good-step fraction, and how often the hard label
                     agrees with the exact step checker (`check_step`).
With --continuations 0 no continuations are sampled: steps.jsonl rows carry only `exact_labels`
(for `training.prm --labels exact`), which is all a task with a step checker needs.

Problems come from the `rollouts` seed stream, 3_000_000 + --seed (training/components/seeds.py),
which no other recipe draws from.
The K samples of a problem are one request (n=K); every (problem, step prefix) continuation
request goes to the engine in a single `generate` call (n=M each); identical prefixes of a
problem's solutions share one request.

Every request has its own sampling seed (`request_seed`). On CPU this relies on the fix in
engine/cpu_fixes.py (loaded as a vLLM plugin): without it a seeded request whose prefill is
split kills the engine; with it, seeded samples are reproducible for the same batch schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from training.components import math_shepherd as ms
from training.components.config import parse_with_config
from training.components.jsonl import write_jsonl
from training.components.offline_llm import make_llm
from training.components.problems import draw_problems, selector_errors
from training.components.seeds import problem_seed
from training.tasks import Problem, completion_prompt, get_task


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.rollouts",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/demo/base", help="model directory (HF format)")
    p.add_argument("--task", action="append", default=None, metavar="SELECTOR",
                   help="demo task with optional levels, e.g. arithmetic/3-8 (repeatable)")
    p.add_argument("--problems", type=int, default=100, help="problems per --task")
    p.add_argument("--samples", type=int, default=8, help="solutions sampled per problem (K)")
    p.add_argument("--continuations", type=int, default=4,
                   help="continuations sampled per step prefix (M) for the step labels")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0,
                   help=f"problems use seed {problem_seed('rollouts', 0):_} + this; sampling uses "
                        "it too")
    p.add_argument("--max-pairs-per-problem", type=int, default=0, help="0: no cap")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--max-model-len", type=int, default=512)
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    """What is wrong with the arguments (empty when nothing)."""
    errors = []
    if not args.task:
        errors.append("give at least one --task")
    errors += selector_errors(args.task or [])
    if args.out_dir is None:
        errors.append("--out-dir is required")
    for name in ("problems", "samples", "max_tokens"):
        if getattr(args, name) < 1:
            errors.append(f"--{name.replace('_', '-')} must be at least 1")
    if args.continuations < 0:
        errors.append("--continuations must be 0 (exact labels only) or more")
    if args.temperature <= 0:
        errors.append("--temperature must be positive (greedy samples would all be the same)")
    return errors


def request_seed(seed: int, phase: int, index: int) -> int:
    """The sampling seed of one request: distinct per run seed, phase (0 solutions,
    1 continuations) and request."""
    return (seed * 2 + phase) * 10_000_000 + index


def sample_solutions(llm, problems: list[Problem], args) -> list[list[str]]:
    """K sampled completions per problem, one n=K request each, all in one `generate` call."""
    from vllm import SamplingParams

    params = [SamplingParams(n=args.samples, temperature=args.temperature,
                             max_tokens=args.max_tokens, seed=request_seed(args.seed, 0, i))
              for i in range(len(problems))]
    outputs = llm.generate([completion_prompt(p) for p in problems], params, use_tqdm=True)
    return [[c.text for c in out.outputs] for out in outputs]


def sample_continuations(llm, problems: list[Problem], keys, args
                         ) -> dict[tuple[int, tuple[str, ...]], list[bool]]:
    """For every key, whether each of its M continuations reaches the right answer."""
    from vllm import SamplingParams

    if not keys:
        return {}
    prompts = [ms.prefix_prompt(completion_prompt(problems[i]), prefix) for i, prefix in keys]
    params = [SamplingParams(n=args.continuations, temperature=args.temperature,
                             max_tokens=args.max_tokens, seed=request_seed(args.seed, 1, j))
              for j in range(len(keys))]
    outputs = llm.generate(prompts, params, use_tqdm=True)
    outcomes = {}
    for (i, prefix), out in zip(keys, outputs):
        task = get_task(problems[i].task)
        head = "\n".join(prefix) + "\n"
        outcomes[(i, prefix)] = [task.check(problems[i], head + c.text) for c in out.outputs]
    return outcomes


def run(args: argparse.Namespace, llm=None) -> dict:
    """The whole pipeline; returns the summary (also written to out-dir/summary.json)."""
    started = time.perf_counter()
    problems = draw_problems(args.task, "rollouts", args.seed, args.problems)
    llm = llm or make_llm(args.model, max_model_len=args.max_model_len, seed=args.seed)
    t0 = time.perf_counter()
    print(f"sampling {len(problems)} problems x {args.samples}", file=sys.stderr, flush=True)
    samples = sample_solutions(llm, problems, args)
    sample_seconds = time.perf_counter() - t0
    steps = [[s.split("\n") for s in ms.unique(ms.solution_text(c) for c in cs)] for cs in samples]
    keys = ms.continuation_keys(problems, steps) if args.continuations else []
    t0 = time.perf_counter()
    print(f"labelling steps: {len(keys)} prefixes x {args.continuations} continuations",
          file=sys.stderr, flush=True)
    outcomes = sample_continuations(llm, problems, keys, args) if args.continuations else None
    continuation_seconds = time.perf_counter() - t0
    pairs, rows, counts = ms.build_rows(problems, samples, outcomes, args.max_pairs_per_problem)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(pairs, args.out_dir / "preferences.jsonl")
    write_jsonl(rows, args.out_dir / "steps.jsonl")
    summary = {**counts, "continuation_requests": len(keys),
               "continuations": len(keys) * args.continuations,
               "model": str(args.model), "tasks": args.task, "samples": args.samples,
               "continuations_per_step": args.continuations, "temperature": args.temperature,
               "max_tokens": args.max_tokens, "seed": args.seed,
               "problem_seed": problem_seed("rollouts", args.seed),
               "sample_seconds": round(sample_seconds, 1),
               "continuation_seconds": round(continuation_seconds, 1),
               "seconds": round(time.perf_counter() - started, 1)}
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    errors = check_args(args)
    if errors:
        parser.error("; ".join(errors))
    summary = run(args)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
