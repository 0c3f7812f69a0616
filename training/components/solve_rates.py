"""Which RL prompts carry a learning signal: DAPO's dynamic sampling, done once before training.

A GRPO group whose completions all get the same reward has zero advantage and teaches nothing; on
the demo model 55-82% of fresh groups were like that (all solved or all failed). DAPO drops such
groups as it samples; TRL's GRPOTrainer has no such hook, so `training.rl --filter-samples K`
samples K completions of every candidate prompt with the starting policy first (vLLM offline, in
a spawned child: its CPU build pins the process to one torch thread and keeps its KV cache) and
keeps the prompts whose exact solve rate lies strictly between 0 and 1.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor


def measure(model: str, rows: Sequence[dict], samples: int, temperature: float,
            max_tokens: int, seed: int) -> list[int]:
    """How many of `samples` completions of each row's prompt the task's checker accepts."""
    from vllm import SamplingParams

    from training.components.offline_llm import make_llm
    from training.tasks import Problem, get_task

    llm = make_llm(model, seed=seed)
    params = [SamplingParams(n=samples, temperature=temperature, max_tokens=max_tokens,
                             seed=seed * 10_000_000 + i) for i in range(len(rows))]
    outputs = llm.generate([row["prompt"] for row in rows], params, use_tqdm=True)
    solved = []
    for row, out in zip(rows, outputs):
        problem = Problem(row["pid"], row["task"], row["question"], row["answer"],
                          row["difficulty"])
        task = get_task(row["task"])
        solved.append(sum(bool(task.check(problem, c.text)) for c in out.outputs))
    return solved


def measure_in_child(model: str, rows: Sequence[dict], samples: int, temperature: float,
                     max_tokens: int, seed: int) -> list[int]:
    """`measure` in a fresh process, so the trainer in this one keeps its threads and memory."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, model, list(rows), samples, temperature, max_tokens,
                           seed).result()


def informative(rows: Sequence[dict], solved: Sequence[int], samples: int
                ) -> tuple[list[dict], dict]:
    """The rows solved sometimes but not always, and the counts per task (kept, all solved,
    none solved) for the manifest."""
    kept, counts = [], {}
    for row, k in zip(rows, solved):
        c = counts.setdefault(row["task"], {"candidates": 0, "kept": 0, "always": 0, "never": 0})
        c["candidates"] += 1
        if k == 0:
            c["never"] += 1
        elif k == samples:
            c["always"] += 1
        else:
            c["kept"] += 1
            kept.append(row)
    return kept, counts
