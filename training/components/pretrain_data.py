"""The demo base model's training data: worked solutions of both tasks from the `pretrain` seed
stream, as token ids with the loss on the completion only, and their padding collator."""

from __future__ import annotations

import random
from dataclasses import dataclass
from multiprocessing import Pool

import torch

from training.components.seeds import problem_seed
from training.tasks import completion_prompt, get_task

CHUNK = 1000  # problems generated per (task, seed) chunk, in parallel


def _worked_chunk(job: tuple[str, int, int]) -> list[tuple[str, str]]:
    name, seed, count = job
    return [(completion_prompt(p), s) for p, s in get_task(name).generate_worked(seed, count)]


def make_examples(counts: dict[str, int], seed: int, workers: int) -> list[tuple[str, str]]:
    """(completion prompt, worked solution) pairs; chunk k of a task uses the `pretrain` stream's
    seed * 10_000 + k."""
    jobs = []
    for name, count in counts.items():
        for k, start in enumerate(range(0, count, CHUNK)):
            jobs.append((name, problem_seed("pretrain", seed * 10_000 + k),
                         min(CHUNK, count - start)))
    if workers > 1 and len(jobs) > 1:
        with Pool(workers) as pool:
            chunks = pool.map(_worked_chunk, jobs)
    else:
        chunks = [_worked_chunk(job) for job in jobs]
    examples = [pair for chunk in chunks for pair in chunk]
    random.Random(seed).shuffle(examples)
    return examples


class WorkedSolutions(torch.utils.data.Dataset):
    """Token ids of prompt + solution + eos; labels mask the prompt with -100."""

    def __init__(self, examples: list[tuple[str, str]], tokenizer) -> None:
        self.vocab = tokenizer.get_vocab()
        self.eos = tokenizer.eos_token_id
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        prompt, completion = self.examples[i]
        # One token per character (the tokenizer is character-level; a unit test checks this).
        prompt_ids = [self.vocab[c] for c in prompt]
        completion_ids = [self.vocab[c] for c in completion] + [self.eos]
        return {"input_ids": prompt_ids + completion_ids,
                "labels": [-100] * len(prompt_ids) + completion_ids}


@dataclass
class PadCollator:
    pad_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id)  # [B, S]
        labels = torch.full((len(rows), width), -100)  # [B, S]
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, S]
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
