"""The prompt family of `training.prompt_tuning --method`: what each trains and how it is served.

| method     | trains (peft)                                        | served as                    |
|------------|------------------------------------------------------|------------------------------|
| prompt     | n virtual-token embeddings (PromptTuningConfig)      | prompt embeddings            |
| ptuning    | the same, produced by an MLP encoder (PromptEncoder) | prompt embeddings            |
| prefix     | keys and values of every layer, through an MLP       | offline only                 |
| ptuning_v2 | keys and values of every layer, directly             | offline only                 |

Prompt tuning and P-tuning end as n embeddings the server prepends to a request's prompt
through vLLM's prompt-embeddings input (the saved `prompt_embeddings` [n, hidden]; P-tuning's
encoder has already run). Prefix tuning and P-tuning v2 (prefix tuning without the
reparameterisation, Liu et al. 2022) add trained keys and values to every layer's attention,
which vLLM has no input for.
"""

from __future__ import annotations

import argparse

PROMPT_METHODS = ("prompt", "ptuning", "prefix", "ptuning_v2")
SERVED = ("prompt", "ptuning")
OFFLINE_REASON = ("prefix tuning and P-tuning v2 add trained keys and values to every layer's "
                  "attention, which vLLM cannot serve")


def served_as(method: str) -> str:
    return "prompt embeddings" if method in SERVED else "offline only"


def prompt_config(method: str, args: argparse.Namespace):
    from peft import (PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig,
                      PromptTuningInit)

    common = dict(task_type="CAUSAL_LM", num_virtual_tokens=args.num_virtual_tokens)
    if method == "prompt":
        if args.init_text:
            return PromptTuningConfig(prompt_tuning_init=PromptTuningInit.TEXT,
                                      prompt_tuning_init_text=args.init_text,
                                      tokenizer_name_or_path=str(args.model), **common)
        return PromptTuningConfig(prompt_tuning_init=PromptTuningInit.RANDOM, **common)
    if method == "ptuning":
        return PromptEncoderConfig(encoder_hidden_size=args.encoder_hidden_size,
                                   encoder_reparameterization_type="MLP", **common)
    return PrefixTuningConfig(prefix_projection=method == "prefix",
                              encoder_hidden_size=args.encoder_hidden_size, **common)


def serving_note(method: str, out) -> str:
    if method in SERVED:
        return (f"prompt embeddings: load it like an adapter (/v1/load_lora_adapter or "
                f"--lora-modules NAME={out}) and name it as the request's model")
    return f"offline only: {OFFLINE_REASON}; evaluate it with peft"
