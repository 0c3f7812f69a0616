"""Full-parameter tuning of an existing HF model, or of some of its layers and modules, on generic
and domain data mixed by weight (domain-adaptive tuning).

    python -m training.finetune --config training/configs/finetune_countdown.yaml \\
        [--train-layers 2-3] [--train-modules mlp lm_head]

--dataset is repeatable, each with its weight (the share of the training rows it supplies): a
domain set and a generic one, e.g. task:countdown:20000:0.8 and task:arithmetic/1-8:5000:0.2,
keep the generic skills while the model specialises. --train-layers / --train-modules choose the
parameters that learn (training/components/layer_selection.py); the rest stay frozen.

Writes an HF model directory the server serves with `python -m server --model OUT`, and a
manifest with the base model's fingerprint, the data mixture, the parameters that learned, and
greedy accuracy before and after on the domain task (--eval-task) and on each generic task
(--generic-task: forgetting).
"""

from __future__ import annotations

import argparse
import resource
import sys

from training.components.arguments import (add_data_arguments, add_eval_arguments,
                                           add_training_arguments, data_problems)
from training.components.base_model import check_base
from training.components.config import run_checked
from training.components.layer_selection import (layer_count, layer_problems, parse_layers,
                                                 select_trainable)
from training.components.peft import write_training_manifest
from training.components.trainer import train_and_measure, training_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.finetune",
                                description=__doc__.splitlines()[0])
    add_data_arguments(p)
    p.add_argument("--train-layers", nargs="+", default=None, metavar="I|LO-HI",
                   help="decoder layers whose parameters learn (default: all); the embeddings, "
                        "final norm and lm_head then learn only if --train-modules names them")
    p.add_argument("--train-modules", nargs="+", default=None, metavar="NAME",
                   help="modules that learn, by dotted name part: mlp, self_attn, q_proj, "
                        "input_layernorm, embed_tokens, norm, lm_head (default: all)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    add_training_arguments(p)
    add_eval_arguments(p)
    # Every weight moves, unlike an adapter's few: a rate 10x below LoRA's keeps the base's skills.
    p.set_defaults(lr=1e-4)
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    problems = check_base(args.model) + data_problems(args)
    if problems:  # the layers are counted in the model's config: only of a local model
        return problems
    try:
        layers = parse_layers(args.train_layers)
    except ValueError as error:
        return problems + [str(error)]
    return problems + layer_problems(layers, layer_count(args.model))


def main(argv: list[str] | None = None) -> int:
    return run_checked(build_parser(), train, argv, check_args)


def mixture_shares(specs) -> dict[str, float]:
    """Each dataset's expected share of the training rows (its weight over the total)."""
    total = sum(spec.weight for spec in specs)
    return {str(spec): round(spec.weight / total, 4) for spec in specs}


def train(args: argparse.Namespace) -> dict:
    # Heavy imports here so --help and --dry-run stay fast.
    import torch
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer

    from training.components.accuracy import accuracy_report
    from training.components.base_model import load_tokenizer, stop_ids
    from training.components.sft_data import DatasetSpec, load_mixture, tokenize_dataset

    torch.manual_seed(args.seed)
    specs = [DatasetSpec.parse(spec) for spec in args.dataset]
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    trainable = select_trainable(model, parse_layers(args.train_layers), args.train_modules)
    data = tokenize_dataset(load_mixture(specs, args.seed), tokenizer, args.max_length,
                            stop_ids(args.model, tokenizer))
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)

    metrics = accuracy_report(model, tokenizer, args, "base")
    trainer = Trainer(model=model, args=training_arguments(args, weight_decay=args.weight_decay),
                      train_dataset=split["train"], eval_dataset=split["test"],
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    seconds = train_and_measure(trainer, model, tokenizer, args, metrics, "tuned")

    for param in model.parameters():  # saved as a plain model, nothing frozen in its config
        param.requires_grad_(True)
    model.config.use_cache = True
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out), safe_serialization=True)
    tokenizer.save_pretrained(str(args.out))
    counted = {name: p.numel() for name, p in model.named_parameters()}
    extra = {"method": "full" if len(trainable) == len(counted) else "partial",
             "served_as": "model",
             "serve": f"a model: serve it with python -m server --model {args.out}",
             "train_layers": args.train_layers, "train_modules": args.train_modules,
             "trainable_parameters": sum(counted[name] for name in trainable),
             "total_parameters": sum(counted.values()),
             "trained": trainable,
             "mixture": mixture_shares(specs),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    manifest = write_training_manifest(args, "training.finetune", [str(s) for s in specs],
                                       {"rows": len(split["train"]),
                                        "steps": trainer.state.global_step,
                                        "seconds": round(seconds, 1),
                                        "weight_decay": args.weight_decay}, metrics, extra)
    print(f"{extra['method']} fine-tune written to {args.out} ({extra['serve']}): {metrics}")
    return manifest


if __name__ == "__main__":
    sys.exit(main())
