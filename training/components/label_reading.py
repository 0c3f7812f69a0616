"""A label-token adapter read offline, as the server reads it served
(verifiers/label_reading.py): log P(GOOD) - log P(BAD) at the tags of encoded rows
({"input_ids", "tag_positions"}), from the model's logits, each label's probability summed over
the tokens that spell it, in batches, without gradients; a score is
`verifiers.label_reading.probability` of it, as on the server. `step_rows` are the rows that
read every step of a path where the server reads it, and `completion_steps` a completion's
steps as the server cuts a text into steps."""

from __future__ import annotations

from collections.abc import Sequence

from training.components.batches import collate_tags
from training.components.losses import tag_log_odds
from search.steps import StepDelimiter, split_text
from training.components.trainer import to_model_device
from verifiers.label_reading import Encode, TaggedPath, find_tags
from verifiers.reward_format import LABELS


def completion_steps(text: str) -> list[str]:
    """A completion's steps as /v1/verify cuts a text into the steps the verifiers read
    (`search.steps.split_text`, the default delimiter): its non-blank lines, without the space
    after them (indentation kept)."""
    return split_text(text, StepDelimiter())


def step_rows(path: TaggedPath, encode: Encode) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Token sequences that read each step's label once, where the server reads it: the whole
    path's ids with the tags `find_tags` finds, then, for each step whose tag merges with what
    follows it, the step's own query (its label read after its last token), as the server
    scores such a step with a request of its own. Each as (ids, [(step index, position)])."""
    reading = find_tags(path, encode)
    found = [(step, p) for step, p in enumerate(reading.positions) if p is not None]
    rows = [(reading.ids, found)] if found else []
    for step, position in enumerate(reading.positions):
        if position is None:
            ids = encode(path.query(step + 1))
            rows.append((ids, [(step, len(ids) - 1)]))
    return rows


def read_log_odds(model, rows: Sequence[dict], tokenizer, batch_size: int = 64,
                  progress: bool = False) -> list[list[float]]:
    """Per row, the log-odds of GOOD at each of its tags (the model left in eval mode)."""
    import torch
    from tqdm import tqdm

    good, bad = LABELS.spellings(tokenizer)
    found: list[list[float]] = []
    model.eval()
    starts = range(0, len(rows), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="eval", unit="batch", disable=not progress):
            chunk = rows[start:start + batch_size]
            batch = to_model_device(collate_tags(chunk, tokenizer.pad_token_id), model)
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits  # [B, S, V]
            odds = tag_log_odds(logits, batch["tag_rows"], batch["tag_cols"], good,
                                bad).tolist()
            for row in chunk:
                count = len(row["tag_positions"])
                found.append(odds[:count])
                odds = odds[count:]
    return found
