"""Train a LoRA adapter that vLLM serves as it is.

    python -m training.lora --config training/configs/lora_countdown.yaml [--max-steps 10 ...]

Writes a PEFT directory (adapter_config.json + adapter_model.safetensors) and a manifest with the
base model's fingerprint, the LoRA settings, the data and the metrics.
"""

from __future__ import annotations

import argparse
import sys
import time

from training.components.peft import adapter_parser, lora_config, run_recipe, save_adapter
from training.components.trainer import training_arguments


def build_parser() -> argparse.ArgumentParser:
    return adapter_parser("python -m training.lora", __doc__.splitlines()[0])


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_parser(), train, argv)


def train(args: argparse.Namespace) -> dict:
    # Heavy imports here so --help and --dry-run stay fast.
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer

    from training.components.accuracy import greedy_accuracy
    from training.components.base_model import load_tokenizer, stop_ids
    from training.components.sft_data import DatasetSpec, load_mixture, tokenize_dataset

    torch.manual_seed(args.seed)
    specs = [DatasetSpec.parse(spec) for spec in args.dataset]
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    data = tokenize_dataset(load_mixture(specs, args.seed), tokenizer, args.max_length,
                            stop_ids(args.model, tokenizer))
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)

    metrics: dict[str, float] = {}
    if args.eval_task:
        metrics["accuracy_base"] = greedy_accuracy(model, tokenizer, args.eval_task,
                                                   args.eval_count, args.eval_seed)
    model = get_peft_model(model, lora_config(model, args))
    trainer = Trainer(model=model, args=training_arguments(args), train_dataset=split["train"],
                      eval_dataset=split["test"],
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
    if args.eval_task:
        metrics["accuracy_adapter"] = greedy_accuracy(model, tokenizer, args.eval_task,
                                                      args.eval_count, args.eval_seed)
    manifest = save_adapter(model, args, [str(spec) for spec in specs], {
        "rows": len(split["train"]), "steps": trainer.state.global_step,
        "seconds": round(seconds, 1)}, metrics, "training.lora")
    print(f"adapter written to {args.out}: {metrics}")
    return manifest


if __name__ == "__main__":
    sys.exit(main())
