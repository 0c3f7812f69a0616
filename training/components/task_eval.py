"""Greedy accuracy tables of the demo tasks: the evaluation buckets, scoring completions per
bucket and per (task, level), and the markdown of one model or several side by side."""

from __future__ import annotations

from training.components.problems import selector_problems
from training.tasks import Problem, get_task

# bucket -> task selector; each bucket's `count` problems are split evenly over its levels
BUCKETS: dict[str, str] = {
    "arithmetic 1-2 ops": "arithmetic/1-2",
    "arithmetic 3-5 ops": "arithmetic/3-5",
    "arithmetic 6-8 ops": "arithmetic/6-8",
    "countdown": "countdown/1-5",
}


def bucket_problems(count: int, seed: int) -> dict[str, list[Problem]]:
    return {bucket: selector_problems(selector, seed, count) for bucket, selector in BUCKETS.items()}


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
