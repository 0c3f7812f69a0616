"""The transformers Trainer as the recipes use it: their TrainingArguments, a Trainer whose loss
is computed from the logits (the label-token recipes), and a wall-clock limit."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any


def training_arguments(args: argparse.Namespace, **overrides):
    import torch
    from transformers import TrainingArguments

    from training.components.base_model import use_bf16

    bf16 = use_bf16(args)
    values = dict(
        output_dir=tempfile.mkdtemp(prefix="lora-"), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr, num_train_epochs=args.epochs, max_steps=args.max_steps,
        lr_scheduler_type="cosine", warmup_steps=0.05, seed=args.seed, logging_steps=20,
        eval_strategy="no", save_strategy="no", report_to=[], disable_tqdm=False,
        dataloader_num_workers=0, bf16=bf16,
        # bf16 asked for without a GPU: CPU autocast (transformers wants that said)
        use_cpu=bf16 and not torch.cuda.is_available(),
    )
    return TrainingArguments(**{**values, **overrides})


def train_and_measure(trainer, model, tokenizer, args: argparse.Namespace, metrics: dict,
                      stage: str) -> float:
    """Runs `trainer`, then adds its held-out eval loss and the accuracy report at `stage`
    (components.accuracy) to `metrics`; returns the training time in seconds."""
    from training.components.accuracy import accuracy_report

    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
    metrics.update(accuracy_report(model, tokenizer, args, stage))
    return seconds


def train_on_logits(model, tokenizer, args: argparse.Namespace, dataset,
                    collate: Callable[[list[dict], int], dict],
                    loss: Callable[[Any, dict], Any]) -> tuple[int, float]:
    """Trains `model` on `dataset` batched by `collate(rows, pad_id)`, minimising
    `loss(logits, batch)`. Returns the optimizer steps taken and the seconds spent."""
    from transformers import Trainer

    class LogitsLossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            logits = model(input_ids=inputs["input_ids"],
                           attention_mask=inputs["attention_mask"]).logits  # [B, S, V]
            value = loss(logits, inputs)
            return (value, {"logits": logits}) if return_outputs else value

    pad_id = tokenizer.pad_token_id
    trainer = LogitsLossTrainer(
        model=model, args=training_arguments(args, remove_unused_columns=False),
        train_dataset=dataset, data_collator=lambda batch: collate(batch, pad_id))
    started = time.perf_counter()
    trainer.train()
    return trainer.state.global_step, time.perf_counter() - started


def to_model_device(batch: dict, model) -> dict:
    """The collated batch on the model's device (evaluation runs outside the Trainer, which
    moves training batches itself), so the recipes also train on a GPU."""
    return {key: value.to(model.device) for key, value in batch.items()}


def time_limit(minutes: float):
    """A TrainerCallback that stops training after `minutes` of wall time (a safety net)."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def __init__(self) -> None:
            self.deadline = time.time() + 60 * minutes

        def on_step_end(self, args, state, control, **kwargs):
            if time.time() > self.deadline:
                print(f"time limit reached at step {state.global_step}; stopping", flush=True)
                control.should_training_stop = True

    return TimeLimit()
