"""The label-token losses: at a tag, the next-token distribution says GOOD or BAD.

Both read the logits at positions the batch names (`batches.py`) and leave the vocabulary whole,
so the labels also take the probability mass (the server reads them from the top-k logprobs)."""

from __future__ import annotations

from collections.abc import Sequence


def tag_log_odds(logits, tag_rows, tag_cols, good: int | Sequence[int],
                 bad: int | Sequence[int]):
    """log P(GOOD) - log P(BAD) at each tag: logit(GOOD) - logit(BAD) for one id each, or,
    given every id that spells a label (`Labels.spellings`), their probabilities summed, as the
    server reads a label."""
    at_tags = logits[tag_rows, tag_cols].float()  # [n_tags, vocab]
    if isinstance(good, int) and isinstance(bad, int):
        return at_tags[:, good] - at_tags[:, bad]
    return at_tags[:, list(good)].logsumexp(-1) - at_tags[:, list(bad)].logsumexp(-1)


def tag_loss(logits, tag_rows, tag_cols, targets, good_id: int, bad_id: int):
    """Mean over tags of -(y log P(GOOD) + (1 - y) log P(BAD)), full-vocabulary softmax."""
    import torch

    logp = torch.log_softmax(logits[tag_rows, tag_cols].float(), dim=-1)  # [n_tags, vocab]
    return -(targets * logp[:, good_id] + (1 - targets) * logp[:, bad_id]).mean()


def rewards_and_label_mass(logits, last, good_id: int, bad_id: int):
    """Per sequence: reward = logit(GOOD) - logit(BAD) at its tag, and log(P(GOOD)+P(BAD))."""
    import torch

    rows = torch.arange(len(last))
    logp = torch.log_softmax(logits[rows, last].float(), dim=-1)  # [B, vocab]
    mass = torch.logsumexp(logp[:, [good_id, bad_id]], dim=-1)
    return tag_log_odds(logits, rows, last, good_id, bad_id), mass


def bradley_terry_loss(reward, mass):
    """-log sigmoid(r_chosen - r_rejected) over the pairs ([chosen..., rejected...]), minus the
    mean label mass."""
    import torch

    half = len(reward) // 2
    pairwise = -torch.nn.functional.logsigmoid(reward[:half] - reward[half:]).mean()
    return pairwise - mass.mean()
