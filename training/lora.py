"""Train a member of the LoRA family (lora, rslora, dora, adalora, qlora, delta_lora) in the form
the server serves it.

    python -m training.lora --config training/configs/lora_countdown.yaml [--method dora ...]

lora, rslora, qlora: a PEFT directory (adapter_config.json + adapter_model.safetensors) vLLM loads
as it is (qlora's adapter is trained on a 4-bit NF4 base and served on the full-precision one).
adalora: the same, exported as a plain LoRA with per-module ranks (rank_pattern).
dora, delta_lora: a merged model directory, served with `python -m server --model DIR`.
Every output has a manifest with the base model's fingerprint, the method, how it is served,
the data and the metrics (domain accuracy, and --generic-task accuracy before and after).
"""

from __future__ import annotations

import argparse
import resource
import sys

from training.components.peft import adapter_parser, run_recipe, save_adapter
from training.components.peft_methods import (MERGED, DeltaLoRA, adalora_callback,
                                              add_method_arguments, load_base, method_config,
                                              method_problems, save_adalora_as_lora, save_merged,
                                              served_as, serving_note, weight_bytes)
from training.components.skills import declared_skills
from training.components.trainer import train_and_measure, training_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = adapter_parser("python -m training.lora", __doc__.splitlines()[0])
    add_method_arguments(parser)
    parser.add_argument("--skills", default="",
                        help="what the adapter is good at, in words, for its manifest's skills "
                             "(the server's swarm routes by them when no learned router "
                             "knows it)")
    parser.add_argument("--no-skills", action="store_true",
                        help="declare no skills, whatever the data's tasks: the swarm then "
                             "routes to the adapter only by a learned router")
    return parser


def manifest_skills(args: argparse.Namespace, task_selectors: list[str | None]) -> dict | None:
    """The manifest's `skills`: the data's task families unless --no-skills. An adapter trained
    partly on a task's rows is not always good at that task's questions: the chunked-arithmetic
    adapter (3 parts chunks to 1 of short problems) answers short arithmetic worse than the base
    (53% against 74% greedy), and the swarm sent short arithmetic to it by its declaration."""
    return None if args.no_skills else declared_skills(task_selectors, args.skills)


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_parser(), train, argv, extra_checks=method_problems)


def train(args: argparse.Namespace) -> dict:
    # Heavy imports here so --help and --dry-run stay fast.
    import torch
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer

    from training.components.accuracy import accuracy_report
    from training.components.base_model import load_tokenizer, stop_ids
    from training.components.sft_data import DatasetSpec, load_mixture, tokenize_dataset

    torch.manual_seed(args.seed)
    specs = [DatasetSpec.parse(spec) for spec in args.dataset]
    tokenizer = load_tokenizer(args.model)
    model = load_base(args)
    base_bytes = weight_bytes(model)
    data = tokenize_dataset(load_mixture(specs, args.seed), tokenizer, args.max_length,
                            stop_ids(args.model, tokenizer))
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)

    metrics = accuracy_report(model, tokenizer, args, "base")
    model = get_peft_model(model, method_config(model, args))
    callbacks = []
    if args.method == "adalora":
        callbacks.append(adalora_callback(model))
    if args.method == "delta_lora":
        callbacks.append(DeltaLoRA(model, args.delta_update_ratio, args.delta_start_step)
                         .callback())
    trainer = Trainer(model=model, args=training_arguments(args), train_dataset=split["train"],
                      eval_dataset=split["test"], callbacks=callbacks,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    seconds = train_and_measure(trainer, model, tokenizer, args, metrics, "adapter")
    extra = {"method": args.method, "served_as": served_as(args.method),
             "serve": serving_note(args.method, args.out),
             "trainable_parameters": sum(p.numel() for p in model.parameters()
                                         if p.requires_grad),
             "base_weight_bytes": base_bytes}
    weights_saved = False
    if args.method == "adalora":
        extra["rank_pattern"] = save_adalora_as_lora(model, args.out)
        weights_saved = True
    elif args.method in MERGED:
        save_merged(model, tokenizer, args.out)
        weights_saved = True
    elif args.method == "qlora":
        model.save_pretrained(str(args.out), safe_serialization=True)
        weights_saved = True
        metrics.update(fp32_base_accuracy(args, tokenizer))
    skills = manifest_skills(args, [spec.task for spec in specs])
    if skills is not None:
        extra["skills"] = skills
    extra["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    manifest = save_adapter(model, args, [str(spec) for spec in specs], {
        "rows": len(split["train"]), "steps": trainer.state.global_step,
        "seconds": round(seconds, 1)}, metrics, "training.lora", extra, weights_saved)
    print(f"{args.method} written to {args.out} ({extra['serve']}): {metrics}")
    return manifest


def fp32_base_accuracy(args: argparse.Namespace, tokenizer) -> dict:
    """The qlora adapter as the server runs it: on the full-precision base (what that costs
    against the 4-bit base it was trained on is accuracy_adapter - accuracy_served)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.components.accuracy import accuracy_report

    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    return accuracy_report(PeftModel.from_pretrained(base, str(args.out)), tokenizer, args,
                           "served")


if __name__ == "__main__":
    sys.exit(main())
