"""Train the learned difficulty estimator: a LoRA adapter that predicts, from the question alone,
whether the base model's greedy answer to it is wrong.

    python -m training.difficulty --config training/configs/difficulty.yaml [flags]

1. Measure (vLLM offline, one batched `generate` call, in a child process): the base model's
   greedy answer (temperature 0) to --problems problems per --task selector (training) and to
   --eval-count per selector (held out), and with --samples K also K answers to each held-out
   problem sampled at --temperature (its per-problem failure rate). Rows go to
   --out-dir/labels.jsonl:
   {"id", "task", "level", "prompt", "answer", "split": "train"|"eval", "greedy_failure": 0|1,
    "samples": K, "sample_failures": n, "failure_rate": n/K (greedy_failure when K = 0)}.
   `--labels PATH` trains from such a file instead of measuring again.
2. Train (the PRM machinery of `training.prm`): the text is `difficulty_query(question)`, the
   question followed by the tag " #"; the token after the tag is GOOD "+" when greedy solves the
   problem and BAD "-" when it fails; the loss is the full-vocabulary cross-entropy at the tag.
3. Evaluate on the held-out problems: d = 1 - P(GOOD) over {GOOD, BAD} (what the `learned`
   estimator serves); Spearman of d against the measured greedy failure rate per bucket
   (task x level, d averaged per bucket) and against each problem's failure rate; AUROC of d for
   greedy failure. Metrics go into the adapter's manifest and to --eval-json.

Problems come from seed 4_000_000 + --seed (training) and 4_000_000 + --eval-seed (held out;
any held-out prompt also drawn for training is dropped). Evaluation uses seeds below 1_000_000,
pretraining >= 1_000_000, adapter SFT data >= 2_000_000, rollouts >= 3_000_000: none is reused.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from search.difficulty.learned import difficulty_query
from training.config import parse_with_config, resolved
from training.label_adapter import new_label_adapter, to_model_device, train_on_logits
from training.lora import build_parser as lora_parser
from training.lora import check_servable, save_adapter
from training.prm import auroc, collate, tag_log_odds, tag_loss
from training.rollouts import make_llm, selector_problems
from training.task_selector import parse_selector
from training.tasks import Problem, completion_prompt, get_task
from verifiers.reward_format import BAD, GOOD, good_probability

DIFFICULTY_SEED_BASE = 4_000_000
DEFAULT_TASKS = ["arithmetic/1-8", "countdown/1-5"]
LABELS_NAME = "labels.jsonl"


def build_parser() -> argparse.ArgumentParser:
    parser = lora_parser()
    parser.prog = "python -m training.difficulty"
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--task", action="append", default=None, metavar="SELECTOR",
                        help="demo task with optional levels, e.g. arithmetic/1-8 (repeatable; "
                             f"default {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--problems", type=int, default=1500,
                        help="training problems per --task (split evenly over its levels)")
    parser.add_argument("--samples", type=int, default=0,
                        help="K answers sampled per held-out problem besides the greedy one, for "
                             "its per-problem failure rate (0: greedy 0/1)")
    parser.add_argument("--temperature", type=float, default=1.0, help="for the K samples")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"where the measured {LABELS_NAME} and eval.json go")
    parser.add_argument("--labels", type=Path, default=None,
                        help=f"a {LABELS_NAME} of an earlier run: train on it, measure nothing")
    parser.add_argument("--eval-json", type=Path, default=None,
                        help="write the evaluation (metrics and per-bucket table) here too")
    # From the LoRA parser: --eval-seed and --eval-count pick the held-out problems here.
    parser.set_defaults(eval_seed=1, eval_count=250)
    return parser


def check_args(args: argparse.Namespace) -> list[str]:
    """What is wrong with the recipe's own arguments (empty when nothing)."""
    errors = []
    for selector in args.task:
        try:
            parse_selector(selector)
        except ValueError as e:
            errors.append(str(e))
    if args.labels is None:
        if args.out_dir is None:
            errors.append("--out-dir is required to measure (or give --labels PATH)")
        if args.problems < 1 or args.eval_count < 1:
            errors.append("--problems and --eval-count must be at least 1")
        if args.samples < 0:
            errors.append("--samples must be 0 (greedy only) or more")
        if args.samples and args.temperature <= 0:
            errors.append("--temperature must be positive for --samples")
        if args.eval_seed == args.seed:
            errors.append(f"--eval-seed {args.eval_seed} equals --seed: the held-out problems "
                          "must come from another seed")
    elif not args.labels.is_file():
        errors.append(f"--labels {args.labels} does not exist; run without it to measure")
    return errors


# -- problems and their measured labels ------------------------------------------------------


def problem_seed(seed: int) -> int:
    return DIFFICULTY_SEED_BASE + seed


def load_problems(selectors: Sequence[str], seed: int, count: int,
                  exclude: Collection[str] = ()) -> list[Problem]:
    """Every selector's problems from the difficulty seed stream, repeated (or excluded)
    prompts dropped."""
    problems: dict[str, Problem] = {}
    for selector in selectors:
        for problem in selector_problems(selector, problem_seed(seed), count):
            if problem.prompt not in exclude:
                problems.setdefault(problem.prompt, problem)
    return list(problems.values())


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


def measure(llm, splits: dict[str, list[Problem]], args: argparse.Namespace) -> list[dict]:
    """Greedy answers to every problem, and K samples of each held-out one, in one `generate`
    call (the samples only serve the evaluation; training labels are greedy)."""
    from vllm import SamplingParams

    problems = [(split, p) for split, items in splits.items() for p in items]
    prompts, params = [], []
    for i, (split, problem) in enumerate(problems):
        prompts.append(completion_prompt(problem))
        params.append(SamplingParams(temperature=0.0, max_tokens=args.max_tokens))
        if sampled(split, args):
            prompts.append(completion_prompt(problem))
            params.append(SamplingParams(n=args.samples, temperature=args.temperature,
                                         max_tokens=args.max_tokens,
                                         seed=args.seed * 10_000_000 + i))
    outputs = iter(llm.generate(prompts, params, use_tqdm=True))
    rows = []
    for split, problem in problems:
        greedy = next(outputs).outputs[0].text
        samples = [c.text for c in next(outputs).outputs] if sampled(split, args) else []
        rows.append(label_row(problem, split, greedy, samples))
    return rows


def sampled(split: str, args: argparse.Namespace) -> bool:
    return split == "eval" and args.samples > 0


def measure_in_child(splits: dict[str, list[Problem]], args: argparse.Namespace) -> list[dict]:
    """`measure` in a fresh process: vLLM's CPU build pins the process to one torch thread and
    holds its KV cache until exit, neither of which training in this process should inherit."""
    return measure(make_llm(args), splits, args)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(rows: Sequence[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


# -- the training text and its label ---------------------------------------------------------


def target(row: dict) -> float:
    """The probability of GOOD the adapter is trained towards: 1 when greedy solves it."""
    return 1.0 - float(row["greedy_failure"])


def encode_row(row: dict, tokenizer, max_length: int) -> dict:
    """Token ids of `difficulty_query(prompt)` (tokenized as the server tokenizes a text prompt)
    and the one tag position whose next token carries the label."""
    ids = tokenizer(difficulty_query(row["prompt"]))["input_ids"]
    if len(ids) > max_length:
        raise ValueError(f"a difficulty query of {len(ids)} tokens exceeds --max-length "
                         f"{max_length}; raise --max-length")
    return {"input_ids": ids, "tag_positions": [len(ids) - 1], "tag_targets": [target(row)]}


def difficulty_of_log_odds(log_odds: float) -> float:
    """d from logit(GOOD) - logit(BAD), exactly as the server computes it from logprobs."""
    return 1.0 - good_probability({GOOD: log_odds, BAD: 0.0})


# -- evaluation ------------------------------------------------------------------------------


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's r of the tie-averaged ranks, as scipy's
    `spearmanr`; written out because scipy is not a dependency). nan when either side is
    constant or there are fewer than 2 points."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs paired values; got {len(x)} and {len(y)}")
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    mean = (len(x) + 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    var_x = sum((a - mean) ** 2 for a in rx)
    var_y = sum((b - mean) ** 2 for b in ry)
    if var_x == 0 or var_y == 0:
        return float("nan")
    return cov / math.sqrt(var_x * var_y)


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
    import torch
    from tqdm import tqdm

    good_id, bad_id = tokenizer.convert_tokens_to_ids([GOOD, BAD])
    encoded = [encode_row(r, tokenizer, max_length) for r in rows]
    odds: list[float] = []
    model.eval()
    with torch.no_grad():
        for start in tqdm(range(0, len(encoded), batch_size), desc="eval", unit="batch"):
            batch = to_model_device(
                collate(encoded[start : start + batch_size], tokenizer.pad_token_id), model)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits  # [B, S, V]
            odds += tag_log_odds(logits, batch["tag_rows"], batch["tag_cols"],
                                 good_id, bad_id).tolist()
    return [difficulty_of_log_odds(o) for o in odds]


# -- the recipe ------------------------------------------------------------------------------


def measured_rows(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The labelled rows (measured now, or read from --labels) and timing notes."""
    if args.labels is not None:
        return read_jsonl(args.labels), {"labels": str(args.labels)}
    train_problems = load_problems(args.task, args.seed, args.problems)
    eval_problems = load_problems(args.task, args.eval_seed, args.eval_count,
                                  exclude={p.prompt for p in train_problems})
    started = time.perf_counter()
    print(f"measuring {len(train_problems)} training problems (greedy) and "
          f"{len(eval_problems)} held-out ones (greedy"
          f"{f' + {args.samples} samples' if args.samples else ''})", file=sys.stderr, flush=True)
    splits = {"train": train_problems, "eval": eval_problems}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = pool.submit(measure_in_child, splits, args).result()
    path = args.out_dir / LABELS_NAME
    write_jsonl(rows, path)
    return rows, {"labels": str(path), "measure_seconds": round(time.perf_counter() - started, 1)}


def train(args: argparse.Namespace) -> dict:
    rows, notes = measured_rows(args)
    train_rows = [r for r in rows if r["split"] == "train"]
    eval_rows = [r for r in rows if r["split"] == "eval"]
    if not train_rows or not eval_rows:
        raise SystemExit(f"{notes['labels']}: need rows of both splits (train and eval); "
                         f"got {len(train_rows)} and {len(eval_rows)}")

    from datasets import Dataset

    adapter = new_label_adapter(args)
    good_id, bad_id = adapter.good_id, adapter.bad_id
    data = Dataset.from_list([encode_row(r, adapter.tokenizer, args.max_length)
                              for r in train_rows])
    steps, seconds = train_on_logits(
        adapter, args, data, collate,
        lambda logits, batch: tag_loss(logits, batch["tag_rows"], batch["tag_cols"],
                                       batch["tag_targets"], good_id, bad_id))
    model, tokenizer = adapter.model, adapter.tokenizer

    difficulties = predict(model, eval_rows, tokenizer, args.max_length)
    metrics, table = evaluate_difficulty(eval_rows, difficulties, train_rows)
    metrics["train_greedy_failure"] = sum(r["greedy_failure"] for r in train_rows) / len(train_rows)
    manifest = save_adapter(model, args, [notes["labels"]], {
        "rows": len(train_rows), "steps": steps, "seconds": round(seconds, 1),
        "tasks": args.task, "problem_seed": problem_seed(args.seed),
        "eval_problem_seed": problem_seed(args.eval_seed), **notes}, metrics,
        "training.difficulty")
    report = {"metrics": metrics, "buckets": table, "train": manifest["train"],
              "adapter": str(args.out), "command": manifest["command"]}
    for path in {p for p in (args.eval_json, args.out_dir and args.out_dir / "eval.json") if p}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(table))
    print(f"difficulty adapter written to {args.out}: {json.dumps(metrics)}")
    return manifest


def markdown(table: dict[str, dict]) -> str:
    lines = ["| bucket | n | greedy failure | failure rate | mean d |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {b} | {v['n']} | {v['greedy_failure']:.3f} | {v['failure_rate']:.3f} | "
              f"{v['mean_d']:.3f} |" for b, v in table.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`run_recipe` with the training data named by --labels or measured into --out-dir."""
    parser = build_parser()
    args = parse_with_config(parser, argv)
    if args.dataset:
        parser.error("this recipe measures its own data: drop --dataset (use --labels PATH to "
                     "reuse the labels.jsonl of an earlier run)")
    args.task = args.task or list(DEFAULT_TASKS)
    args.dataset = [str(args.labels or (args.out_dir or Path(".")) / LABELS_NAME)]
    errors = check_servable(args) + check_args(args)
    if errors:
        parser.error("; ".join(errors))
    if args.dry_run:
        print(resolved(args))
        return 0
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
