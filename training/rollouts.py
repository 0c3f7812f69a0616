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

Problems come from seed 3_000_000 + --seed (evaluation uses seeds below 1_000_000, pretraining
>= 1_000_000, adapter SFT data >= 2_000_000), so rollouts never reuse those problems.
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
import os
import sys
import time
from pathlib import Path

from training import math_shepherd as ms
from training.config import parse_with_config
from training.task_selector import parse_selector
from training.tasks import Problem, completion_prompt, get_task, step_labels

ROLLOUT_SEED_BASE = 3_000_000


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
                   help=f"problems use seed {ROLLOUT_SEED_BASE:_} + this; sampling uses it too")
    p.add_argument("--max-pairs-per-problem", type=int, default=0, help="0: no cap")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--max-model-len", type=int, default=512)
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    """What is wrong with the arguments (empty when nothing)."""
    errors = []
    if not args.task:
        errors.append("give at least one --task")
    for selector in args.task or []:
        try:
            parse_selector(selector)
        except ValueError as e:
            errors.append(str(e))
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


def selector_problems(selector: str, seed: int, count: int) -> list[Problem]:
    """`count` problems of a selector, split evenly over its levels (as `worked_problems`)."""
    name, levels = parse_selector(selector)
    task = get_task(name)
    if levels is None:
        return task.generate(seed, count)
    shares = [count // len(levels) + (i < count % len(levels)) for i in range(len(levels))]
    return [p for level, n in zip(levels, shares) for p in task.generate(seed, n, level)]


def load_problems(selectors: list[str], seed: int, count: int) -> list[Problem]:
    """Every selector's problems from the rollout seed stream, repeated prompts dropped."""
    problems: dict[str, Problem] = {}
    for selector in selectors:
        for problem in selector_problems(selector, ROLLOUT_SEED_BASE + seed, count):
            problems.setdefault(problem.prompt, problem)
    return list(problems.values())


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


def continuation_keys(problems: list[Problem], solutions: list[list[list[str]]]
                      ) -> list[tuple[int, tuple[str, ...]]]:
    """The distinct (problem index, step prefix) pairs whose continuations label a step."""
    keys: dict[tuple[int, tuple[str, ...]], None] = {}
    for index, steps_list in enumerate(solutions):
        for steps in steps_list:
            for prefix in ms.prefixes_to_expand(steps):
                keys.setdefault((index, prefix), None)
    return list(keys)


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


def build_rows(problems: list[Problem], samples: list[list[str]], outcomes, max_pairs: int
               ) -> tuple[list[dict], list[dict], dict]:
    """Preference rows, step rows, and the summary's counts. `outcomes` None: no Math-Shepherd
    labels, the rows carry the step checker's only."""
    pairs, rows = [], []
    n_samples = n_correct = n_unique = 0
    hard_all, soft_all, exact_all = [], [], []
    per_task: dict[str, dict] = {}
    for index, (problem, completions) in enumerate(zip(problems, samples)):
        task = get_task(problem.task)
        judged = [(ms.solution_text(c), task.check(problem, c)) for c in completions]
        n_samples += len(judged)
        n_correct += sum(ok for _, ok in judged)
        tally = per_task.setdefault(problem.task, {"solutions": 0, "correct": 0, "steps": 0,
                                                   "good": 0, "exact_good": 0, "agree": 0,
                                                   "hard": 0})
        tally["solutions"] += len(judged)
        tally["correct"] += sum(ok for _, ok in judged)
        pairs += ms.preference_pairs(problem.prompt, judged, max_pairs or None)
        for text, ok in {t: ok for t, ok in judged if t}.items():
            steps = text.split("\n")
            n_unique += 1
            exact = step_labels(problem, steps)
            if outcomes is None:
                rows.append({"prompt": problem.prompt, "completions": steps,
                             "exact_labels": [int(e) for e in exact]})
                hard = soft = []
            else:
                keyed = {prefix: outcomes[(index, prefix)]
                         for prefix in ms.prefixes_to_expand(steps)}
                hard, soft = ms.label_steps(steps, keyed, ok)
                rows.append(ms.step_row(problem.prompt, steps, hard, soft, exact))
            hard_all += hard
            soft_all += soft
            exact_all += exact
            tally["steps"] += len(steps)
            tally["good"] += sum(hard)
            tally["hard"] += len(hard)
            tally["exact_good"] += sum(exact)
            tally["agree"] += sum(h == int(e) for h, e in zip(hard, exact))
    counts = {
        "problems": len(problems), "solutions": n_samples, "unique_solutions": n_unique,
        "sample_accuracy": round(n_correct / n_samples, 4) if n_samples else None,
        "pairs": len(pairs), "step_rows": len(rows), "steps": len(exact_all),
        "good_step_fraction": round(sum(hard_all) / len(hard_all), 4) if hard_all else None,
        "mean_soft_label": round(sum(soft_all) / len(soft_all), 4) if soft_all else None,
        "exact_good_step_fraction":
            round(sum(exact_all) / len(exact_all), 4) if exact_all else None,
        "hard_label_agreement_with_check_step":
            round(ms.agreement(hard_all, exact_all), 4) if hard_all else None,
        "by_task": {name: _task_summary(t) for name, t in per_task.items()},
    }
    return pairs, rows, counts


def _task_summary(t: dict) -> dict:
    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {"solutions": t["solutions"], "sample_accuracy": ratio(t["correct"], t["solutions"]),
            "steps": t["steps"], "good_step_fraction": ratio(t["good"], t["hard"]),
            "exact_good_step_fraction": ratio(t["exact_good"], t["steps"]),
            "hard_label_agreement_with_check_step": ratio(t["agree"], t["hard"])}


def write_jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def make_llm(args):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM  # slow import, after argument errors

    return LLM(model=str(args.model), dtype="float32", max_model_len=args.max_model_len,
               seed=args.seed)


def run(args: argparse.Namespace, llm=None) -> dict:
    """The whole pipeline; returns the summary (also written to out-dir/summary.json)."""
    started = time.perf_counter()
    problems = load_problems(args.task, args.seed, args.problems)
    llm = llm or make_llm(args)
    t0 = time.perf_counter()
    print(f"sampling {len(problems)} problems x {args.samples}", file=sys.stderr, flush=True)
    samples = sample_solutions(llm, problems, args)
    sample_seconds = time.perf_counter() - t0
    steps = [[s.split("\n") for s in ms.unique(ms.solution_text(c) for c in cs)] for cs in samples]
    keys = continuation_keys(problems, steps) if args.continuations else []
    t0 = time.perf_counter()
    print(f"labelling steps: {len(keys)} prefixes x {args.continuations} continuations",
          file=sys.stderr, flush=True)
    outcomes = sample_continuations(llm, problems, keys, args) if args.continuations else None
    continuation_seconds = time.perf_counter() - t0
    pairs, rows, counts = build_rows(problems, samples, outcomes, args.max_pairs_per_problem)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(pairs, args.out_dir / "preferences.jsonl")
    write_jsonl(rows, args.out_dir / "steps.jsonl")
    summary = {**counts, "continuation_requests": len(keys),
               "continuations": len(keys) * args.continuations,
               "model": str(args.model), "tasks": args.task, "samples": args.samples,
               "continuations_per_step": args.continuations, "temperature": args.temperature,
               "max_tokens": args.max_tokens, "seed": args.seed,
               "problem_seed": ROLLOUT_SEED_BASE + args.seed,
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
