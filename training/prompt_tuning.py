"""Train a soft prompt: prompt tuning, P-tuning, prefix tuning or P-tuning v2 (peft).

    python -m training.prompt_tuning --config training/configs/prompt_countdown.yaml [--method ptuning ...]

Writes a PEFT directory and a manifest. prompt and ptuning are served: the server prepends their
virtual-token embeddings to the prompt (vLLM's prompt embeddings), so a request names the
directory's adapter name as its model. prefix and ptuning_v2 are offline only (their manifest says
why); their accuracy before and after is measured here, with peft.
"""

from __future__ import annotations

import argparse
import resource
import sys

from training.components.arguments import (add_data_arguments, add_eval_arguments,
                                           add_training_arguments, data_problems)
from training.components.base_model import check_base
from training.components.config import run_checked
from training.components.peft import write_training_manifest
from training.components.prompt_methods import (OFFLINE_REASON, PROMPT_METHODS, SERVED,
                                                prompt_config, served_as, serving_note)
from training.components.trainer import train_and_measure, training_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.prompt_tuning",
                                description=__doc__.splitlines()[0])
    add_data_arguments(p)
    p.add_argument("--method", choices=PROMPT_METHODS, default="prompt")
    p.add_argument("--num-virtual-tokens", type=int, default=16)
    p.add_argument("--init-text", default=None,
                   help="prompt: start the virtual tokens from this text's embeddings")
    p.add_argument("--encoder-hidden-size", type=int, default=128,
                   help="ptuning and prefix: the reparameterising MLP's width")
    add_training_arguments(p)
    add_eval_arguments(p)
    p.set_defaults(lr=0.01)  # soft prompts learn at higher rates than LoRA (Lester et al. 2021)
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    problems = check_base(args.model) + data_problems(args)
    if args.num_virtual_tokens < 1:
        problems.append("--num-virtual-tokens must be at least 1")
    if args.init_text and args.method != "prompt":
        problems.append("--init-text initialises prompt tuning only: drop it or use --method "
                        "prompt")
    return problems


def main(argv: list[str] | None = None) -> int:
    return run_checked(build_parser(), train, argv, check_args)


def train(args: argparse.Namespace) -> dict:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer

    from training.components.accuracy import accuracy_report
    from training.components.base_model import load_tokenizer, stop_ids
    from training.components.sft_data import DatasetSpec, load_mixture, tokenize_dataset

    torch.manual_seed(args.seed)
    specs = [DatasetSpec.parse(spec) for spec in args.dataset]
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    data = tokenize_dataset(load_mixture(specs, args.seed), tokenizer, args.max_length,
                            stop_ids(args.model, tokenizer))
    split = data.train_test_split(test_size=args.eval_fraction, seed=args.seed)

    metrics = accuracy_report(model, tokenizer, args, "base")
    model = get_peft_model(model, prompt_config(args.method, args))
    trainer = Trainer(model=model, args=training_arguments(args), train_dataset=split["train"],
                      eval_dataset=split["test"],
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    seconds = train_and_measure(trainer, model, tokenizer, args, metrics, "adapter")
    model.save_pretrained(str(args.out), safe_serialization=True)
    extra = {"method": args.method, "served_as": served_as(args.method),
             "serve": serving_note(args.method, args.out),
             "num_virtual_tokens": args.num_virtual_tokens,
             "trainable_parameters": sum(p.numel() for p in model.parameters()
                                         if p.requires_grad),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.method not in SERVED:
        extra["not_served_because"] = OFFLINE_REASON
    manifest = write_training_manifest(args, "training.prompt_tuning",
                                       [str(spec) for spec in specs],
                                       {"rows": len(split["train"]),
                                        "steps": trainer.state.global_step,
                                        "seconds": round(seconds, 1)}, metrics, extra)
    print(f"{args.method} written to {args.out} ({extra['serve']}): {metrics}")
    return manifest


if __name__ == "__main__":
    sys.exit(main())
