"""Train the process reward model: a LoRA adapter that says, after each step's tag, whether the
step is good (Math-Shepherd labels from `training.rollouts`; hard or soft).

    python -m training.prm --dataset steps.jsonl --out models/demo/adapters/prm [LoRA flags]

Rows: {"prompt", "completions": [step, ...], "labels": [0|1, ...]} and optionally
"soft_labels": [0..1, ...] and "exact_labels": [0|1, ...] (a step checker's verdicts). --labels
picks the target: hard (`labels`), soft (`soft_labels`), exact (`exact_labels`), or gated:
exact * (1 + soft) / 2, so a step the checker rejects is bad and a valid step is better the more
often continuations from it reach the answer (what search wants, where a checker exists), or
solvable: computed from the prompt by the task, a step is good when it is valid and the problem
can still be solved after it (`training.tasks.solvable_labels`; exact where Math-Shepherd
estimates). --init-adapter continues training an adapter (e.g. the exact-label PRM) instead of
starting a fresh LoRA.
At every tag the loss is the cross-entropy of the
next-token distribution against the target y: -(y log P(GOOD) + (1-y) log P(BAD)) over the whole
vocabulary, so the labels also take the mass (the server reads them from the top-k logprobs).
Scores are P(GOOD) renormalised over {GOOD, BAD} (verifiers/reward_format.py).
"""

from __future__ import annotations

import argparse
import json
import sys

from training.components.batches import collate_tags
from training.components.label_adapter import new_label_adapter
from training.components.label_reading import read_log_odds, step_rows
from training.components.losses import tag_loss
from training.components.metrics import auroc
from training.components.peft import adapter_parser, run_recipe, save_adapter
from training.components.trainer import train_on_logits
from training.tasks import from_prompt, solvable_labels
from verifiers.label_reading import prompt_encoder
from verifiers.reward_format import written_path


def build_parser() -> argparse.ArgumentParser:
    parser = adapter_parser("python -m training.prm", __doc__.splitlines()[0])
    parser.add_argument("--labels", choices=sorted(LABEL_KINDS), default="hard",
                        help="which step labels to train on (see above)")
    parser.add_argument("--init-adapter", default=None, metavar="DIR",
                        help="continue training this adapter (its rank and targets) instead of "
                             "a fresh LoRA")
    return parser


def gated_targets(row: dict) -> list[float]:
    return [e * (1 + s) / 2 for e, s in zip(row["exact_labels"], row["soft_labels"])]


def solvable_targets(row: dict) -> list[int]:
    problem = from_prompt(row["prompt"])
    if problem is None:
        raise ValueError(f"--labels solvable: no demo task states {row['prompt']!r}")
    return solvable_labels(problem, row["completions"])


LABEL_KINDS = {"hard": lambda row: row["labels"], "soft": lambda row: row["soft_labels"],
               "exact": lambda row: row["exact_labels"], "gated": gated_targets,
               "solvable": solvable_targets}
# The row columns each kind reads (what `load_step_rows` keeps).
LABEL_COLUMNS = {"hard": ["labels"], "soft": ["soft_labels"], "exact": ["exact_labels"],
                 "gated": ["exact_labels", "soft_labels"], "solvable": []}


def step_targets(row: dict, kind: str) -> list[float]:
    try:
        return [float(t) for t in LABEL_KINDS[kind](row)]
    except KeyError as exc:
        raise ValueError(f"--labels {kind} needs {exc} in every row") from None


def encode_rows(row: dict, tokenizer, max_length: int, labels: str = "hard") -> list[dict]:
    """The rows that train a path's steps where the `prm` verifier reads them (`step_rows`):
    token ids as the server tokenizes a text prompt (with the tokenizer's special tokens), the
    positions of the tags' last tokens, and their targets. First the whole tagged path, with
    the tags found in it; then a row for each step whose tag merges with the newline after it
    (" #\\n" one token): its own query, which the server reads with a request of its own. Tags
    past `max_length` are left out, and so is a row left without any."""
    steps = row["completions"]
    targets = step_targets(row, labels)
    if len(targets) != len(steps):
        raise ValueError(f"{len(steps)} steps but {len(targets)} labels in a row")
    encoded = []
    for ids, tags in step_rows(written_path(row["prompt"], steps), prompt_encoder(tokenizer)):
        kept = [(step, p) for step, p in tags if p < max_length]
        if kept:
            encoded.append({"input_ids": ids[:max_length],
                            "tag_positions": [p for _, p in kept],
                            "tag_targets": [targets[step] for step, _ in kept]})
    return encoded


def encode_batch(batch: dict[str, list], tokenizer, max_length: int, labels: str
                 ) -> dict[str, list]:
    """`encode_rows` over a batch of rows (a `datasets` batched map: columns of lists)."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    encoded = [e for row in rows for e in encode_rows(row, tokenizer, max_length, labels)]
    return {key: [e[key] for e in encoded]
            for key in ("input_ids", "tag_positions", "tag_targets")}


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_parser(), train, argv)


def load_step_rows(paths: list[str], labels: str):
    """The files' rows with only the columns `labels` needs, so that files with and without
    Math-Shepherd labels (`training.rollouts --continuations 0`, `training.corrupt_steps`) mix."""
    from datasets import concatenate_datasets, load_dataset

    keep = ["prompt", "completions", *LABEL_COLUMNS[labels]]
    parts = []
    for path in paths:
        part = load_dataset("json", data_files=path, split="train")
        missing = [c for c in keep if c not in part.column_names]
        if missing:
            raise ValueError(f"--labels {labels} needs {missing} in every row; {path} has none")
        parts.append(part.select_columns(keep))
    return concatenate_datasets(parts)


def train(args: argparse.Namespace) -> dict:
    adapter = new_label_adapter(args)
    good_id, bad_id = adapter.good_id, adapter.bad_id
    rows = load_step_rows(args.dataset, args.labels)
    # split the paths, then encode: a path's rows stay on one side
    split = {name: part.map(lambda b: encode_batch(b, adapter.tokenizer, args.max_length,
                                                   args.labels),
                            batched=True, remove_columns=part.column_names)
             for name, part in rows.train_test_split(test_size=args.eval_fraction,
                                                     seed=args.seed).items()}
    steps, seconds = train_on_logits(
        adapter.model, adapter.tokenizer, args, split["train"], collate_tags,
        lambda logits, batch: tag_loss(logits, batch["tag_rows"], batch["tag_cols"],
                                       batch["tag_targets"], good_id, bad_id))
    metrics = evaluate(adapter.model, split["test"], adapter.tokenizer)
    manifest = save_adapter(adapter.model, args, list(args.dataset), {
        "rows": len(split["train"]), "steps": steps, "seconds": round(seconds, 1),
        "labels": args.labels, "init_adapter": args.init_adapter}, metrics, "training.prm")
    print(f"PRM written to {args.out}: {json.dumps(metrics)}")
    return manifest


def evaluate(model, rows, tokenizer) -> dict:
    """Step-level AUROC of the log-odds of GOOD against the (hard-thresholded) held-out
    labels."""
    rows = list(rows)  # a datasets.Dataset: rows as dicts
    scores = [o for odds in read_log_odds(model, rows, tokenizer) for o in odds]
    labels = [int(t >= 0.5) for row in rows for t in row["tag_targets"]]
    return {"step_auroc": auroc(scores, labels), "eval_steps": len(labels),
            "eval_good_fraction": sum(labels) / max(len(labels), 1)}


if __name__ == "__main__":
    sys.exit(main())
