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
from training.components.label_reading import read_log_odds
from training.components.losses import tag_loss
from training.components.metrics import auroc
from training.components.peft import adapter_parser, run_recipe, save_adapter
from training.components.trainer import train_on_logits
from training.tasks import from_prompt, solvable_labels
from verifiers.label_reading import find_tags, prompt_encoder
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


def encode_row(row: dict, tokenizer, max_length: int, labels: str = "hard") -> dict:
    """Token ids of the tagged path as the server tokenizes it (a text prompt: with the
    tokenizer's special tokens), the positions of the tags' last token, and their targets. A
    tag's position is where the `prm` verifier reads it: the end of the path up to that tag,
    tokenized alone (a step whose tokens merge across its tag is left out: the server reads it
    from a request of its own)."""
    steps = row["completions"]
    targets = step_targets(row, labels)
    if len(targets) != len(steps):
        raise ValueError(f"{len(steps)} steps but {len(targets)} labels in a row")
    reading = find_tags(written_path(row["prompt"], steps), prompt_encoder(tokenizer))
    ids = reading.ids[:max_length]
    positions, kept = [], []
    for position, target in zip(reading.positions, targets):
        if position is not None and position < max_length:
            positions.append(position)
            kept.append(float(target))
    return {"input_ids": ids, "tag_positions": positions, "tag_targets": kept}


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
    data = rows.map(lambda r: encode_row(r, adapter.tokenizer, args.max_length, args.labels),
                    remove_columns=rows.column_names)
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)
    steps, seconds = train_on_logits(
        adapter.model, adapter.tokenizer, args, split["train"], collate_tags,
        lambda logits, batch: tag_loss(logits, batch["tag_rows"], batch["tag_cols"],
                                       batch["tag_targets"], good_id, bad_id))
    metrics = evaluate(adapter.model, split["test"], adapter.tokenizer.pad_token_id, good_id,
                       bad_id)
    manifest = save_adapter(adapter.model, args, list(args.dataset), {
        "rows": len(split["train"]), "steps": steps, "seconds": round(seconds, 1),
        "labels": args.labels, "init_adapter": args.init_adapter}, metrics, "training.prm")
    print(f"PRM written to {args.out}: {json.dumps(metrics)}")
    return manifest


def evaluate(model, rows, pad_id: int, good_id: int, bad_id: int) -> dict:
    """Step-level AUROC of the log-odds of GOOD against the (hard-thresholded) held-out
    labels."""
    rows = list(rows)  # a datasets.Dataset: rows as dicts
    scores = [o for odds in read_log_odds(model, rows, pad_id, good_id, bad_id) for o in odds]
    labels = [int(t >= 0.5) for row in rows for t in row["tag_targets"]]
    return {"step_auroc": auroc(scores, labels), "eval_steps": len(labels),
            "eval_good_fraction": sum(labels) / max(len(labels), 1)}


if __name__ == "__main__":
    sys.exit(main())
