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

from training.label_adapter import new_label_adapter, to_model_device, train_on_logits
from training.lora import build_parser as lora_parser
from training.lora import run_recipe, save_adapter
from verifiers.reward_format import step_query


def build_parser() -> argparse.ArgumentParser:
    parser = lora_parser()
    parser.prog = "python -m training.reward"
    parser.description = __doc__.splitlines()[0]
    return parser


def encode_pair(row: dict, tokenizer, max_length: int) -> dict:
    """Token ids of both solutions, each ending at its tag (kept when truncating)."""
    def ids(solution: str) -> list[int]:
        tokens = tokenizer(step_query(row["prompt"], [solution.strip()]),
                           add_special_tokens=False)["input_ids"]
        return tokens[-max_length:]  # the tag at the end is what is scored

    return {"chosen_ids": ids(row["chosen"]), "rejected_ids": ids(row["rejected"])}


def collate(rows: list[dict], pad_id: int):
    """[chosen..., rejected...] right-padded, with the index of each sequence's last token."""
    import torch

    sequences = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
    width = max(map(len, sequences))
    ids = torch.full((len(sequences), width), pad_id)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for b, seq in enumerate(sequences):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "last": torch.tensor([len(s) - 1 for s in sequences])}


def rewards_and_label_mass(logits, last, good_id: int, bad_id: int):
    """Per sequence: reward = logit(GOOD) - logit(BAD) at its tag, and log(P(GOOD)+P(BAD))."""
    import torch

    at_tag = logits[torch.arange(len(last)), last].float()  # [B, vocab]
    logp = torch.log_softmax(at_tag, dim=-1)
    reward = at_tag[:, good_id] - at_tag[:, bad_id]
    mass = torch.logsumexp(logp[:, [good_id, bad_id]], dim=-1)
    return reward, mass


def bradley_terry_loss(reward, mass):
    import torch

    half = len(reward) // 2
    pairwise = -torch.nn.functional.logsigmoid(reward[:half] - reward[half:]).mean()
    return pairwise - mass.mean()


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
        adapter, args, split["train"], collate,
        lambda logits, batch: bradley_terry_loss(
            *rewards_and_label_mass(logits, batch["last"], good_id, bad_id)))
    metrics = evaluate(adapter.model, split["test"], adapter.tokenizer.pad_token_id, good_id,
                       bad_id)
    manifest = save_adapter(adapter.model, args, list(args.dataset), {
        "pairs": len(split["train"]), "steps": steps, "seconds": round(seconds, 1)}, metrics,
        "training.reward")
    print(f"ORM written to {args.out}: {json.dumps(metrics)}")
    return manifest


def evaluate(model, rows, pad_id: int, good_id: int, bad_id: int) -> dict:
    """Pairwise accuracy: how often the chosen solution gets the higher reward."""
    import torch

    wins, total = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), 32):
            batch = to_model_device(collate(
                [rows[i] for i in range(start, min(start + 32, len(rows)))], pad_id), model)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
            reward, _ = rewards_and_label_mass(logits, batch["last"], good_id, bad_id)
            half = len(reward) // 2
            wins += ((reward[:half] > reward[half:]).float()
                     + 0.5 * (reward[:half] == reward[half:]).float()).sum().item()
            total += half
    return {"pairwise_accuracy": wins / max(total, 1), "eval_pairs": total}


if __name__ == "__main__":
    sys.exit(main())
