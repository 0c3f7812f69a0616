"""Collate functions of the label-token recipes: right-padded ids with the positions their loss
reads."""

from __future__ import annotations

from collections.abc import Sequence


def collate_tags(rows: Sequence[dict], pad_id: int):
    """Rows of {"input_ids", "tag_positions", "tag_targets"} -> ids, mask, and every tag as
    (row, column, target) (`training.prm`, `training.difficulty`); rows read, not trained on,
    need no targets."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    rows_idx, cols, targets = [], [], []
    for b, row in enumerate(rows):
        ids[b, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
        mask[b, : len(row["input_ids"])] = 1
        rows_idx += [b] * len(row["tag_positions"])
        cols += row["tag_positions"]
        targets += row.get("tag_targets", ())
    return {"input_ids": ids, "attention_mask": mask, "tag_rows": torch.tensor(rows_idx),
            "tag_cols": torch.tensor(cols), "tag_targets": torch.tensor(targets)}


def collate_pairs(rows: list[dict], pad_id: int):
    """Rows of {"chosen_ids", "rejected_ids"} -> [chosen..., rejected...] right-padded, with the
    index of each sequence's last token (`training.reward`)."""
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
