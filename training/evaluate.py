"""Greedy accuracy of a model on fresh demo problems, per difficulty bucket, with vLLM offline.

    VLLM_CPU_KVCACHE_SPACE=1 python -m training.evaluate --model models/demo/base --count 500 \\
        --seed 7 [--json results.json] [--adapter NAME=PATH ...]

With adapters, the same problems are also solved by each adapter, and a comparison table
(bucket x model) follows the base model's tables.

Buckets: arithmetic with 1-2, 3-5 and 6-8 operations, and countdown (levels 1-5); each bucket's
`count` problems are split evenly over its levels. Seeds must stay below
`training.tasks.base.TRAIN_SEED_BASE` so that evaluation never reuses a training stream.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from training.tasks import Problem, completion_prompt, get_task
from training.tasks.base import TRAIN_SEED_BASE

BUCKETS: dict[str, tuple[str, list[int]]] = {
    "arithmetic 1-2 ops": ("arithmetic", [1, 2]),
    "arithmetic 3-5 ops": ("arithmetic", [3, 4, 5]),
    "arithmetic 6-8 ops": ("arithmetic", [6, 7, 8]),
    "countdown": ("countdown", [1, 2, 3, 4, 5]),
}


def bucket_problems(count: int, seed: int) -> dict[str, list[Problem]]:
    problems = {}
    for bucket, (name, levels) in BUCKETS.items():
        task = get_task(name)
        shares = [count // len(levels) + (i < count % len(levels)) for i in range(len(levels))]
        problems[bucket] = [p for level, n in zip(levels, shares)
                            for p in task.generate(seed, n, level)]
    return problems


def score(problems: dict[str, list[Problem]], completions: dict[str, list[str]]) -> dict:
    """Accuracy per bucket and per (task, level)."""
    buckets, levels = {}, {}
    for bucket, items in problems.items():
        correct = [get_task(p.task).check(p, c) for p, c in zip(items, completions[bucket])]
        buckets[bucket] = {"n": len(items), "accuracy": sum(correct) / len(items)}
        for p, ok in zip(items, correct):
            row = levels.setdefault(f"{p.task} {p.difficulty}", [0, 0])
            row[0] += ok
            row[1] += 1
    per_level = {k: {"n": n, "accuracy": c / n} for k, (c, n) in levels.items()}
    return {"buckets": buckets, "levels": per_level}


def markdown(results: dict) -> str:
    lines = ["| bucket | n | greedy accuracy |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['n']} | {100 * v['accuracy']:.1f}% |"
              for k, v in results["buckets"].items()]
    lines += ["", "| task level | n | greedy accuracy |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['n']} | {100 * v['accuracy']:.1f}% |"
              for k, v in results["levels"].items()]
    return "\n".join(lines)


def comparison(by_model: dict[str, dict]) -> str:
    names = list(by_model)
    lines = ["| bucket | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for bucket in next(iter(by_model.values()))["buckets"]:
        cells = [f"{100 * by_model[n]['buckets'][bucket]['accuracy']:.1f}%" for n in names]
        lines.append(f"| {bucket} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--count", type=int, default=500, help="problems per bucket")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--samples", type=int, default=0,
                        help="print this many completions per bucket, for a look")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH",
                        help="also evaluate this LoRA adapter on the same problems")
    args = parser.parse_args(argv)
    if args.seed >= TRAIN_SEED_BASE:
        parser.error(f"--seed must be below {TRAIN_SEED_BASE}: higher seeds make training data")

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams  # slow import, after argument errors
    from vllm.lora.request import LoRARequest

    problems = bucket_problems(args.count, args.seed)
    lora = {"enable_lora": True, "max_lora_rank": 16, "max_loras": 1} if args.adapter else {}
    llm = LLM(model=args.model, dtype="float32", max_model_len=512, seed=0, **lora)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    flat = [p for items in problems.values() for p in items]
    by_model = {}
    for i, spec in enumerate(args.adapter, start=1):
        name, _, path = spec.partition("=")
        outputs = llm.generate([completion_prompt(p) for p in flat], params,
                               lora_request=LoRARequest(name, i, path))
        texts = iter(o.outputs[0].text for o in outputs)
        by_model[name] = score(problems, {b: [next(texts) for _ in v] for b, v in problems.items()})
    start = time.time()
    outputs = llm.generate([completion_prompt(p) for p in flat], params)
    texts = iter(o.outputs[0].text for o in outputs)
    completions = {b: [next(texts) for _ in items] for b, items in problems.items()}
    seconds = time.time() - start

    results = score(problems, completions)
    results.update(model=args.model, count=args.count, seed=args.seed,
                   generate_seconds=round(seconds, 1))
    for bucket, items in problems.items():
        for p, c in list(zip(items, completions[bucket]))[: args.samples]:
            print(f"--- {p.prompt} (answer {p.answer})\n{c}")
    print(markdown(results))
    print(f"\n{len(flat)} problems, greedy, generated in {seconds:.0f} s")
    if by_model:
        results["adapters"] = by_model
        print("\n" + comparison({"base": results, **by_model}))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
