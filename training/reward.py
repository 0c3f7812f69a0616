"""Train the outcome reward model: a Bradley-Terry LoRA adapter of the base.

    python -m training.reward --dataset preferences.jsonl --out models/demo/adapters/orm [LoRA flags]

Rows: {"prompt", "chosen", "rejected"} (from `training.rollouts`). A solution is read as one
step of the reward format (verifiers/reward_format.py): `prompt\\nsolution #`; its reward is the
log-odds of GOOD over BAD after the tag. Loss: -log sigmoid(r_chosen - r_rejected), plus
-log(P(GOOD) + P(BAD)) at the tag, which keeps the two labels in the top-k the server reads.
"""

from __future__ import annotations

import argparse
import json
import sys

from training.components.batches import collate_pairs
from training.components.label_adapter import new_label_adapter
from training.components.label_reading import completion_steps, read_log_odds
from training.components.losses import bradley_terry_loss, rewards_and_label_mass
from training.components.peft import adapter_parser, run_recipe, save_adapter
from training.components.trainer import train_on_logits
from verifiers.label_reading import prompt_encoder
from verifiers.reward_format import outcome_query


def build_parser() -> argparse.ArgumentParser:
    return adapter_parser("python -m training.reward", __doc__.splitlines()[0])


def encode_pair(row: dict, tokenizer, max_length: int) -> dict:
    """Token ids of both solutions, each ending at its tag (kept when truncating): the `orm`
    verifier's query of the solution's steps (cut as the server cuts a text into steps),
    tokenized as the server's engine tokenizes it (with the special tokens: a Llama's BOS)."""
    def ids(solution: str) -> list[int]:
        tokens = prompt_encoder(tokenizer)(outcome_query(row["prompt"],
                                                         completion_steps(solution)))
        return tokens[-max_length:]  # the tag at the end is what is scored

    return {"chosen_ids": ids(row["chosen"]), "rejected_ids": ids(row["rejected"])}


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_parser(), train, argv)


def train(args: argparse.Namespace) -> dict:
    from datasets import load_dataset

    adapter = new_label_adapter(args)
    good_id, bad_id = adapter.good_id, adapter.bad_id
    rows = load_dataset("json", data_files=args.dataset, split="train")
    data = rows.map(lambda r: encode_pair(r, adapter.tokenizer, args.max_length),
                    remove_columns=rows.column_names)
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)
    steps, seconds = train_on_logits(
        adapter.model, adapter.tokenizer, args, split["train"], collate_pairs,
        lambda logits, batch: bradley_terry_loss(
            *rewards_and_label_mass(logits, batch["last"], good_id, bad_id)))
    metrics = evaluate(adapter.model, split["test"], adapter.tokenizer)
    manifest = save_adapter(adapter.model, args, list(args.dataset), {
        "pairs": len(split["train"]), "steps": steps, "seconds": round(seconds, 1)}, metrics,
        "training.reward")
    print(f"ORM written to {args.out}: {json.dumps(metrics)}")
    return manifest


def evaluate(model, rows, tokenizer) -> dict:
    """Pairwise accuracy: how often the chosen solution gets the higher reward (the log-odds
    of GOOD at its tag)."""
    pairs = list(rows)  # a datasets.Dataset: rows as dicts
    ends = [{"input_ids": ids, "tag_positions": [len(ids) - 1]}
            for pair in pairs for ids in (pair["chosen_ids"], pair["rejected_ids"])]
    odds = [o for (o,) in read_log_odds(model, ends, tokenizer)]
    wins = sum((c > r) + 0.5 * (c == r) for c, r in zip(odds[::2], odds[1::2]))
    return {"pairwise_accuracy": wins / max(len(pairs), 1), "eval_pairs": len(pairs)}


if __name__ == "__main__":
    sys.exit(main())
