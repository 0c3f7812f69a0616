"""Greedy accuracy of a transformers model on fresh demo problems (for training-time eval).

The committed model-card numbers come from `training.evaluate`, which uses vLLM; this one runs
in-process with `generate` so a training recipe needs no engine.
"""

from __future__ import annotations

from training.components.generation import greedy_completions
from training.components.problems import parse_selector, worked_problems
from training.tasks import completion_prompt, get_task


def greedy_accuracy(model, tokenizer, selector: str, count: int, seed: int,
                    batch_size: int = 64, max_new_tokens: int = 96) -> float:
    """Fraction of `count` fresh problems of `selector` (e.g. 'arithmetic/6-8') solved."""
    task = get_task(parse_selector(selector)[0])
    problems = [problem for problem, _ in worked_problems(selector, seed, count)]
    texts = greedy_completions(model, tokenizer, [completion_prompt(p) for p in problems],
                               batch_size, max_new_tokens)
    return sum(task.check(p, text) for p, text in zip(problems, texts)) / len(problems)


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
