"""LoRA adapters that vLLM serves as they are: the flags every adapter recipe shares, the checks
that refuse unservable settings, peft's config, and the PEFT directory + manifest written."""

from __future__ import annotations

import argparse
import sys

from adapters.manifest import FINGERPRINT_KEY, model_fingerprint, write_manifest
from training.components.base_model import check_base, use_bf16
from training.components.arguments import (add_data_arguments, add_eval_arguments,
                                           add_training_arguments, data_problems)
from training.components.config import run_checked

# vLLM's --max-lora-rank accepts exactly these; an adapter's rank must not exceed the server's.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The flags of `training.lora`, which the label-token recipes (prm, reward, difficulty)
    extend with their own."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_data_arguments(p)
    p.add_argument("--r", type=int, default=8, help="LoRA rank")
    p.add_argument("--server-max-rank", type=int, default=16,
                   help="the serving engine's --max-lora-rank; r above it is refused")
    p.add_argument("--lora-alpha", type=float, default=16)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--target-modules", nargs="+", default=["all-linear"],
                   help="module names (q_proj v_proj ...) or all-linear")
    p.add_argument("--use-rslora", action="store_true")
    p.add_argument("--layers-to-transform", type=int, nargs="+", default=None,
                   help="train only these decoder layers")
    add_training_arguments(p)
    add_eval_arguments(p)
    # Accepted only to be refused with the fix: vLLM cannot serve these.
    p.add_argument("--bias", default="none", help=argparse.SUPPRESS)
    p.add_argument("--modules-to-save", nargs="*", default=None, help=argparse.SUPPRESS)
    p.add_argument("--added-tokens", nargs="*", default=None, help=argparse.SUPPRESS)
    return p


def check_servable(args: argparse.Namespace) -> list[str]:
    """Problems that would make the adapter unservable by vLLM, each naming the fix."""
    problems = []
    if args.r < 1 or args.r > max(VLLM_MAX_LORA_RANKS):
        problems.append(f"--r {args.r} is outside 1..{max(VLLM_MAX_LORA_RANKS)}")
    if args.server_max_rank not in VLLM_MAX_LORA_RANKS:
        problems.append(f"--server-max-rank must be one of vLLM's ranks {VLLM_MAX_LORA_RANKS}")
    elif args.r > args.server_max_rank:
        problems.append(f"--r {args.r} exceeds the server's max LoRA rank {args.server_max_rank}:"
                        f" lower --r or serve with a larger --max-lora-rank")
    if args.bias != "none":
        problems.append("LoRA bias is not served by vLLM: use --bias none")
    if args.modules_to_save:
        problems.append("modules_to_save is not served by vLLM: drop --modules-to-save")
    if args.added_tokens:
        problems.append("added tokens change the vocabulary, which adapters cannot: drop "
                        "--added-tokens and use the base tokenizer")
    forbidden = [m for m in args.target_modules if m in ("lm_head", "embed_tokens")]
    if forbidden:
        problems.append(f"--target-modules {forbidden}: target the linear layers only")
    return problems + data_problems(args)


def resolve_targets(model, targets: list[str]) -> list[str]:
    """'all-linear' -> the leaf names of every Linear layer but the output head, spelled out
    (peft refuses the string together with layers_to_transform)."""
    if targets != ["all-linear"]:
        return targets
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear)}
    return sorted(names - {"lm_head"})


def lora_config(model, args: argparse.Namespace):
    from peft import LoraConfig

    return LoraConfig(
        r=args.r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=resolve_targets(model, args.target_modules),
        use_rslora=args.use_rslora, layers_to_transform=args.layers_to_transform,
        bias="none", task_type="CAUSAL_LM",
    )


def save_adapter(model, args: argparse.Namespace, datasets: list[str], train: dict,
                 metrics: dict, recipe: str, extra: dict | None = None,
                 weights_saved: bool = False) -> dict:
    """The PEFT directory vLLM loads, plus the manifest the adapter registry checks (`extra`
    adds to it; with `weights_saved` the caller has written the weights in its own form)."""
    if not weights_saved:
        model.save_pretrained(str(args.out), safe_serialization=True)
    return write_training_manifest(args, recipe, datasets, train, metrics, {
        "rank": args.r, "lora_alpha": args.lora_alpha, "use_rslora": args.use_rslora,
        "target_modules": sorted(model.peft_config["default"].target_modules),
        "layers_to_transform": args.layers_to_transform, **(extra or {})})


def write_training_manifest(args: argparse.Namespace, recipe: str, datasets: list[str],
                            train: dict, metrics: dict, extra: dict) -> dict:
    """The manifest beside what a recipe wrote: the base it was tuned from (fingerprint), the
    data, the run, the metrics and the command."""
    manifest = {
        "base_model": str(args.model),
        FINGERPRINT_KEY: model_fingerprint(args.model),
        "datasets": datasets,
        "train": {**train, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
                  "precision": "bf16" if use_bf16(args) else "fp32"},
        "metrics": metrics,
        "command": f"python -m {recipe} " + " ".join(sys.argv[1:]),
        **extra,
    }
    write_manifest(args.out, manifest)
    return manifest


def run_recipe(parser: argparse.ArgumentParser, train_fn, argv: list[str] | None,
               extra_checks=None) -> int:
    """What every adapter recipe does: config + flags, refuse a base that is not a local model,
    unservable settings (and what `extra_checks(args)` refuses: a list of messages), train."""
    return run_checked(parser, train_fn, argv, lambda args: (
        check_base(args.model) + check_servable(args)
        + (extra_checks(args) if extra_checks else [])))
