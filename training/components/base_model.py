"""The base model a recipe trains: a local directory (said before anything loads or trains: this
machine has no hub), its tokenizer with a pad token (the EOS when it has none, as TRL does for
Llama-3 and Mistral), the ids that end a reply when served, and the precision the hardware has.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.model_dir import require_local_model


def check_base(model: str) -> list[str]:
    """Problems with `--model`, each naming the fix (empty: a local model directory)."""
    try:
        require_local_model(model, "--model")
    except ValueError as exc:
        return [str(exc)]
    return []


def load_tokenizer(model: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:  # padded positions are masked: any id will do, TRL's is EOS
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def stop_ids(model: str | Path, tokenizer) -> frozenset[int]:
    """The ids that end a served reply: the tokenizer's EOS and generation_config.json's EOS ids
    (vLLM stops on any of them; Llama-3's turns end with <|eot_id|>, not its EOS)."""
    ids = {tokenizer.eos_token_id}
    config = Path(model) / "generation_config.json"
    if config.is_file():
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(model).eos_token_id
        ids |= set(eos) if isinstance(eos, list) else {eos}
    return frozenset(i for i in ids if i is not None)


def bf16_available() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def use_bf16(args: argparse.Namespace) -> bool:
    """`--bf16` / `--no-bf16`, else bf16 mixed precision where a GPU has it (fp32 on a CPU)."""
    choice = getattr(args, "bf16", None)
    return bf16_available() if choice is None else choice
