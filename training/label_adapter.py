"""What the label-token recipes share (`training.prm`, `training.reward`, `training.difficulty`):
a LoRA of the base trained with the transformers Trainer so that the token after a tag is GOOD
or BAD (verifiers/reward_format.py), under a loss computed from the logits."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.lora import lora_config, training_arguments
from verifiers.reward_format import BAD, GOOD


@dataclass
class LabelAdapter:
    tokenizer: Any
    good_id: int
    bad_id: int
    model: Any  # the PEFT model being trained


def new_label_adapter(args: argparse.Namespace) -> LabelAdapter:
    """The tokenizer, the label token ids, and a fresh LoRA of `args.model` (seeded), or the
    adapter `args.init_adapter` made trainable again."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    good_id, bad_id = tokenizer.convert_tokens_to_ids([GOOD, BAD])
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if getattr(args, "init_adapter", None):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.init_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(model, args))
    return LabelAdapter(tokenizer, good_id, bad_id, model)


def train_on_logits(adapter: LabelAdapter, args: argparse.Namespace, dataset,
                    collate: Callable[[list[dict], int], dict],
                    loss: Callable[[Any, dict], Any]) -> tuple[int, float]:
    """Trains `adapter.model` on `dataset` batched by `collate(rows, pad_id)`, minimising
    `loss(logits, batch)`. Returns the optimizer steps taken and the seconds spent."""
    from transformers import Trainer

    class LogitsLossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            logits = model(input_ids=inputs["input_ids"],
                           attention_mask=inputs["attention_mask"]).logits  # [B, S, V]
            value = loss(logits, inputs)
            return (value, {"logits": logits}) if return_outputs else value

    pad_id = adapter.tokenizer.pad_token_id
    trainer = LogitsLossTrainer(
        model=adapter.model, args=training_arguments(args, remove_unused_columns=False),
        train_dataset=dataset, data_collator=lambda batch: collate(batch, pad_id))
    started = time.perf_counter()
    trainer.train()
    return trainer.state.global_step, time.perf_counter() - started


def to_model_device(batch: dict, model) -> dict:
    """The collated batch on the model's device (evaluation runs outside the Trainer, which
    moves training batches itself), so the recipes also train on a GPU."""
    return {key: value.to(model.device) for key, value in batch.items()}
