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
2. Train (the label-token machinery `training.prm` uses too): the text is `difficulty_query(question)`, the
   question followed by the tag " #"; the token after the tag is GOOD "+" when greedy solves the
   problem and BAD "-" when it fails; the loss is the full-vocabulary cross-entropy at the tag.
3. Evaluate on the held-out problems: d = 1 - P(GOOD) over {GOOD, BAD} (what the `learned`
   estimator serves); Spearman of d against the measured greedy failure rate per bucket
   (task x level, d averaged per bucket) and against each problem's failure rate; AUROC of d for
   greedy failure. Metrics go into the adapter's manifest and to --eval-json.

Problems come from the `difficulty` seed stream (training/components/seeds.py: 4_000_000 + --seed
for training, 4_000_000 + --eval-seed held out; any held-out prompt also drawn for training is
dropped), which no other recipe draws from.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from training.components.batches import collate_tags
from training.components.base_model import check_base
from training.components.config import run_checked
from training.components.difficulty_labels import (encode_row, evaluate_difficulty, label_row,
                                                   markdown, predict)
from training.components.jsonl import read_jsonl, write_jsonl
from training.components.label_adapter import new_label_adapter
from training.components.losses import tag_loss
from training.components.offline_llm import make_llm
from training.components.peft import adapter_parser, check_servable, save_adapter
from training.components.problems import draw_problems, selector_errors
from training.components.seeds import problem_seed
from training.components.trainer import train_on_logits
from training.tasks import Problem, completion_prompt

DEFAULT_TASKS = ["arithmetic/1-8", "countdown/1-5"]
LABELS_NAME = "labels.jsonl"


def build_parser() -> argparse.ArgumentParser:
    parser = adapter_parser("python -m training.difficulty", __doc__.splitlines()[0])
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
    errors = selector_errors(args.task)
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
    return measure(make_llm(args.model, max_model_len=args.max_model_len, seed=args.seed),
                   splits, args)


def measured_rows(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The labelled rows (measured now, or read from --labels) and timing notes."""
    if args.labels is not None:
        return read_jsonl(args.labels), {"labels": str(args.labels)}
    train_problems = draw_problems(args.task, "difficulty", args.seed, args.problems)
    eval_problems = draw_problems(args.task, "difficulty", args.eval_seed, args.eval_count,
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
        adapter.model, adapter.tokenizer, args, data, collate_tags,
        lambda logits, batch: tag_loss(logits, batch["tag_rows"], batch["tag_cols"],
                                       batch["tag_targets"], good_id, bad_id))
    model, tokenizer = adapter.model, adapter.tokenizer

    difficulties = predict(model, eval_rows, tokenizer, args.max_length)
    metrics, table = evaluate_difficulty(eval_rows, difficulties, train_rows)
    metrics["train_greedy_failure"] = sum(r["greedy_failure"] for r in train_rows) / len(train_rows)
    manifest = save_adapter(model, args, [notes["labels"]], {
        "rows": len(train_rows), "steps": steps, "seconds": round(seconds, 1),
        "tasks": args.task, "problem_seed": problem_seed("difficulty", args.seed),
        "eval_problem_seed": problem_seed("difficulty", args.eval_seed), **notes}, metrics,
        "training.difficulty")
    report = {"metrics": metrics, "buckets": table, "train": manifest["train"],
              "adapter": str(args.out), "command": manifest["command"]}
    for path in {p for p in (args.eval_json, args.out_dir and args.out_dir / "eval.json") if p}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(table))
    print(f"difficulty adapter written to {args.out}: {json.dumps(metrics)}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """`run_checked` with the training data named by --labels or measured into --out-dir."""
    return run_checked(build_parser(), train, argv, recipe_checks)


def recipe_checks(args: argparse.Namespace) -> list[str]:
    """The base, the adapter's settings and the recipe's own; --dataset is this recipe's
    labels file (it measures its own data)."""
    if args.dataset:
        return ["this recipe measures its own data: drop --dataset (use --labels PATH to reuse "
                "the labels.jsonl of an earlier run)"]
    args.task = args.task or list(DEFAULT_TASKS)
    args.dataset = [str(args.labels or (args.out_dir or Path(".")) / LABELS_NAME)]
    return check_base(args.model) + check_servable(args) + check_args(args)


if __name__ == "__main__":
    sys.exit(main())
