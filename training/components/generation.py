"""Greedy completions of a transformers model, batched (training-time evaluation: the recipes'
before/after accuracy and the RL reward-hacking guard), so a recipe needs no engine."""

from __future__ import annotations

from collections.abc import Sequence

import torch


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: Sequence[str], batch_size: int = 64,
                       max_new_tokens: int = 96) -> list[str]:
    """The model's greedy continuation of each prompt (special tokens dropped)."""
    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # batch generation pads left
    texts: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start:start + batch_size])
            inputs = tokenizer(batch, return_tensors="pt", padding=True,
                               add_special_tokens=False).to(model.device)
            outputs = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
            texts += tokenizer.batch_decode(outputs[:, inputs["input_ids"].shape[1]:],
                                            skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return texts
