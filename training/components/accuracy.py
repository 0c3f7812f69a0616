"""Greedy accuracy of a transformers model on fresh demo problems (for training-time eval).

The committed model-card numbers come from `training.evaluate`, which uses vLLM; this one runs
in-process with `generate` so a training recipe needs no engine.
"""

from __future__ import annotations

import torch

from training.components.problems import parse_selector, worked_problems
from training.tasks import completion_prompt, get_task


@torch.no_grad()
def greedy_accuracy(model, tokenizer, selector: str, count: int, seed: int,
                    batch_size: int = 64, max_new_tokens: int = 96) -> float:
    """Fraction of `count` fresh problems of `selector` (e.g. 'arithmetic/6-8') solved."""
    task = get_task(parse_selector(selector)[0])
    problems = [problem for problem, _ in worked_problems(selector, seed, count)]
    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"  # batch generation pads left
    correct = 0
    try:
        for start in range(0, len(problems), batch_size):
            batch = problems[start:start + batch_size]
            inputs = tokenizer([completion_prompt(p) for p in batch], return_tensors="pt",
                               padding=True, add_special_tokens=False).to(model.device)
            outputs = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(outputs[:, inputs["input_ids"].shape[1]:],
                                           skip_special_tokens=True)
            correct += sum(task.check(p, text) for p, text in zip(batch, texts))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return correct / len(problems)


def accuracy_report(model, tokenizer, args, stage: str) -> dict:
    """Greedy accuracy on --eval-task (`accuracy_<stage>`) and on each --generic-task
    (`generic_accuracy_<stage>`: {task: accuracy}), on the same fresh problems at every stage."""
    report: dict = {}
    if args.eval_task:
        report[f"accuracy_{stage}"] = greedy_accuracy(model, tokenizer, args.eval_task,
                                                      args.eval_count, args.eval_seed)
    if getattr(args, "generic_task", None):
        report[f"generic_accuracy_{stage}"] = {
            task: greedy_accuracy(model, tokenizer, task, args.eval_count, args.eval_seed)
            for task in args.generic_task}
    return report
