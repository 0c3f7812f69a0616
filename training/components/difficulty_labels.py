"""The learned difficulty estimator's data and evaluation (`training.difficulty`): a measured
label row per problem, the training text (`difficulty_query`) with its one tag, the adapter's d,
and d against the measured failure rates (per bucket task x level, and per problem)."""

from __future__ import annotations

from collections.abc import Sequence

from search.difficulty.learned import difficulty_of_log_odds, difficulty_query
from training.components.label_reading import read_log_odds
from training.components.metrics import auroc, spearman
from training.tasks import Problem, get_task
from verifiers.label_reading import prompt_encoder


def label_row(problem: Problem, split: str, greedy: str, samples: Sequence[str]) -> dict:
    """One measured problem: greedy failure (the training label) and the sampled failure rate."""
    task = get_task(problem.task)
    greedy_failure = int(not task.check(problem, greedy))
    sample_failures = sum(not task.check(problem, s) for s in samples)
    return {"id": problem.id, "task": problem.task, "level": problem.difficulty,
            "prompt": problem.prompt, "answer": problem.answer, "split": split,
            "greedy_failure": greedy_failure, "samples": len(samples),
            "sample_failures": sample_failures,
            "failure_rate": sample_failures / len(samples) if samples else float(greedy_failure)}


def target(row: dict) -> float:
    """The probability of GOOD the adapter is trained towards: 1 when greedy solves it."""
    return 1.0 - float(row["greedy_failure"])


def encode_row(row: dict, tokenizer, max_length: int) -> dict:
    """Token ids of `difficulty_query(prompt)` (tokenized as the server tokenizes a text prompt)
    and the one tag position whose next token carries the label."""
    ids = prompt_encoder(tokenizer)(difficulty_query(row["prompt"]))
    if len(ids) > max_length:
        raise ValueError(f"a difficulty query of {len(ids)} tokens exceeds --max-length "
                         f"{max_length}; raise --max-length")
    return {"input_ids": ids, "tag_positions": [len(ids) - 1], "tag_targets": [target(row)]}


def bucket_of(row: dict) -> str:
    return f"{row['task']} {row['level']}"


def bucket_table(rows: Sequence[dict], difficulties: Sequence[float] | None = None
                 ) -> dict[str, dict]:
    """Per bucket (task x level): n, measured greedy failure rate, mean per-problem failure rate
    and, given the rows' difficulties, their mean d. Buckets in task-then-level order."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(bucket_of(row), []).append(i)
    table = {}
    for bucket in sorted(groups, key=lambda b: (b.split()[0], int(b.split()[1]))):
        members = groups[bucket]
        entry = {"n": len(members),
                 "greedy_failure": sum(rows[i]["greedy_failure"] for i in members) / len(members),
                 "failure_rate": sum(rows[i]["failure_rate"] for i in members) / len(members)}
        if difficulties is not None:
            entry["mean_d"] = sum(difficulties[i] for i in members) / len(members)
        table[bucket] = entry
    return table


def evaluate_difficulty(rows: Sequence[dict], difficulties: Sequence[float],
                        train_rows: Sequence[dict] = ()) -> tuple[dict, dict]:
    """(metrics, per-bucket table) of held-out difficulties against measured failure.

    With the training rows, also the `lookup` reference: an estimator that knows each problem's
    task and level and answers that bucket's training greedy failure rate."""
    table = bucket_table(rows, difficulties)
    metrics = {
        "spearman_bucket": spearman([b["mean_d"] for b in table.values()],
                                    [b["greedy_failure"] for b in table.values()]),
        "spearman_problem": spearman(difficulties, [r["failure_rate"] for r in rows]),
        "spearman_problem_greedy": spearman(difficulties, [r["greedy_failure"] for r in rows]),
        "auroc_greedy_failure": auroc(list(difficulties), [r["greedy_failure"] for r in rows]),
        "eval_problems": len(rows), "eval_buckets": len(table),
        "eval_greedy_failure": sum(r["greedy_failure"] for r in rows) / max(len(rows), 1),
        "problem_failure": "sampled" if rows and rows[0]["samples"] else "greedy",
    }
    if train_rows:
        known = {b: v["greedy_failure"] for b, v in bucket_table(train_rows).items()}
        lookup = [known.get(bucket_of(r), 0.5) for r in rows]
        metrics["lookup_spearman_problem"] = spearman(lookup, [r["failure_rate"] for r in rows])
    return metrics, table


def predict(model, rows: Sequence[dict], tokenizer, max_length: int, batch_size: int = 256
            ) -> list[float]:
    """The adapter's difficulty d for each row, read at the tag."""
    encoded = [encode_row(r, tokenizer, max_length) for r in rows]
    odds = read_log_odds(model, encoded, tokenizer, batch_size, progress=True)
    return [difficulty_of_log_odds(o) for (o,) in odds]


def markdown(table: dict[str, dict]) -> str:
    lines = ["| bucket | n | greedy failure | failure rate | mean d |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {b} | {v['n']} | {v['greedy_failure']:.3f} | {v['failure_rate']:.3f} | "
              f"{v['mean_d']:.3f} |" for b, v in table.items()]
    return "\n".join(lines)
