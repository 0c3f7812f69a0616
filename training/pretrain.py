"""Train the demo base model: a small Llama on worked solutions of the demo tasks.

    python -m training.pretrain --config training/configs/pretrain_demo.yaml [--flag value ...]

Each example is `prompt + "\\n" + solution + eos` with the loss on the completion only (the
serving format: the user's message, a newline, then the reply). Both tasks, all difficulty
levels, drawn uniformly. Writes an HF model directory (safetensors, float32) with the tokenizer.
Flags override the YAML's keys; the YAML's first line is the command that uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

from training.components.config import parse_with_config
from training.components.pretrain_data import PadCollator, WorkedSolutions, make_examples
from training.components.tokenizer import build_tokenizer
from training.components.trainer import time_limit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="models/demo/base")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--arithmetic-count", type=int, default=200_000,
                        help="training problems of arithmetic (levels 1-8 uniformly)")
    parser.add_argument("--countdown-count", type=int, default=100_000,
                        help="training problems of countdown (levels 1-5 uniformly)")
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--intermediate-size", type=int, default=704)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64,
                        help="vLLM's CPU attention needs 32, 64, 80, 96, 112, 128, ...")
    parser.add_argument("--time-limit-min", type=float, default=None,
                        help="stop training early after this many minutes (a safety net)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes generating the training problems")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_with_config(build_parser(), argv)


def build_model(args: argparse.Namespace, tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        head_dim=args.head_dim,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def _last_loss(trainer: Trainer) -> float | None:
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return round(float(losses[-1]), 4) if losses else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but torch sees no GPU; use --device auto")
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()

    start = time.time()
    counts = {"arithmetic": args.arithmetic_count, "countdown": args.countdown_count}
    examples = make_examples({k: v for k, v in counts.items() if v > 0}, args.seed, args.workers)
    print(f"generated {len(examples)} examples in {time.time() - start:.0f} s", flush=True)

    model = build_model(args, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters", flush=True)
    out = Path(args.out)
    scratch = tempfile.TemporaryDirectory(prefix="pretrain-")  # Trainer's output_dir; unused
    training_args = TrainingArguments(
        output_dir=scratch.name,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        adam_beta2=0.98,
        max_grad_norm=1.0,
        bf16=cuda,
        use_cpu=not cuda,
        logging_steps=max(1, min(100, args.max_steps // 20)),
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=training_args,
                      train_dataset=WorkedSolutions(examples, tokenizer),
                      data_collator=PadCollator(tokenizer.pad_token_id),
                      callbacks=[time_limit(args.time_limit_min)] if args.time_limit_min else None)
    train_start = time.time()
    result = trainer.train()
    train_seconds = time.time() - train_start
    scratch.cleanup()

    model = trainer.model.to("cpu", dtype=torch.float32)
    model.config.dtype = "float32"
    model.config.use_cache = True  # the Trainer turns it off for training
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    manifest = {"parameters": params, "device": device, "train_seconds": round(train_seconds, 1),
                "steps": trainer.state.global_step, "mean_loss": round(result.training_loss, 4),
                "last_loss": _last_loss(trainer), "examples": len(examples),
                "args": {k: str(v) if isinstance(v, Path) else v
                         for k, v in vars(args).items() if k != "workers"}}
    (out / "training_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2), flush=True)


if __name__ == "__main__":
    main()
