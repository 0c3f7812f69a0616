"""A label-token adapter read offline, as the server reads it served: log P(GOOD) - log P(BAD)
at the tags of encoded rows ({"input_ids", "tag_positions"}: where `find_tags` puts them), from
the model's logits, in batches, without gradients. A score is
`verifiers.label_reading.probability` of it, the function the server turns its top-k logprobs'
log-odds into a score with (verifiers/label_reading.py)."""

from __future__ import annotations

from collections.abc import Sequence

from training.components.batches import collate_tags
from training.components.losses import tag_log_odds
from training.components.trainer import to_model_device


def read_log_odds(model, rows: Sequence[dict], pad_id: int, good_id: int, bad_id: int,
                  batch_size: int = 64, progress: bool = False) -> list[list[float]]:
    """Per row, the log-odds at each of its tags (the model left in eval mode)."""
    import torch
    from tqdm import tqdm

    found: list[list[float]] = []
    model.eval()
    starts = range(0, len(rows), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="eval", unit="batch", disable=not progress):
            chunk = rows[start:start + batch_size]
            batch = to_model_device(collate_tags(chunk, pad_id), model)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits  # [B, S, V]
            odds = tag_log_odds(logits, batch["tag_rows"], batch["tag_cols"], good_id,
                                bad_id).tolist()
            for row in chunk:
                count = len(row["tag_positions"])
                found.append(odds[:count])
                odds = odds[count:]
    return found
