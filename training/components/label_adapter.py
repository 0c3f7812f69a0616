"""What the label-token recipes share (`training.prm`, `training.reward`, `training.difficulty`):
a LoRA of the base trained so that the token after a tag is GOOD or BAD
(verifiers/reward_format.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from training.components.base_model import load_tokenizer
from training.components.peft import lora_config
from verifiers.reward_format import LABELS


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
    from transformers import AutoModelForCausalLM

    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.model)
    good_id, bad_id = LABELS.token_ids(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if getattr(args, "init_adapter", None):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.init_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(model, args))
    return LabelAdapter(tokenizer, good_id, bad_id, model)
