"""The engine-free half of `training.rollouts`: preference pairs from right and wrong samples, and
Math-Shepherd step labels from the outcomes of continuations sampled from each step's prefix.

A step is good if completions sampled from the prefix ending at it reach the right answer:
the hard label is 1 when any continuation does, the soft label the fraction that do
(Wang et al., 2024, "Math-Shepherd"). A final `Answer:` step needs no continuations: its
outcome is the solution's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from training.tasks.base import answer_of_step, split_steps


def solution_text(completion: str) -> str:
    """A sampled completion normalised to its steps (stripped lines up to the Answer line)."""
    return "\n".join(split_steps(completion))


def unique(items: Iterable[str]) -> list[str]:
    """Non-empty items in first-seen order, without repeats."""
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def preference_pairs(prompt: str, samples: Sequence[tuple[str, bool]],
                     max_pairs: int | None = None) -> list[dict]:
    """{"prompt", "chosen", "rejected"} rows pairing every distinct right solution with every
    distinct wrong one of the same problem; `samples` are (solution text, correct).

    With a cap, pairs are taken diagonal by diagonal (chosen i with rejected j in order of i+j),
    so the first pairs use as many different solutions as possible.
    """
    chosen = unique(text for text, ok in samples if ok)
    rejected = unique(text for text, ok in samples if not ok)
    order = sorted(((i, j) for i in range(len(chosen)) for j in range(len(rejected))),
                   key=lambda ij: (ij[0] + ij[1], ij[0]))
    if max_pairs is not None and max_pairs > 0:
        order = order[:max_pairs]
    return [{"prompt": prompt, "chosen": chosen[i], "rejected": rejected[j]} for i, j in order]


def is_final(step: str) -> bool:
    """An `Answer: N` step ends the solution: nothing is sampled after it."""
    return answer_of_step(step) is not None


def prefix_prompt(completion_prompt: str, steps: Sequence[str]) -> str:
    """The prompt continuations are sampled from: the completion prompt, the steps so far, and
    a newline (so the model starts the next step)."""
    if not steps:
        return completion_prompt
    return completion_prompt + "\n".join(steps) + "\n"


def prefixes_to_expand(steps: Sequence[str]) -> list[tuple[str, ...]]:
    """The step prefixes of a solution that need continuations: all but a final Answer step."""
    return [tuple(steps[: i + 1]) for i, step in enumerate(steps) if not is_final(step)]


def hard_label(outcomes: Sequence[bool]) -> int:
    """1 if any continuation reached the right answer."""
    return int(any(outcomes))


def soft_label(outcomes: Sequence[bool]) -> float:
    """The fraction of continuations that reached the right answer (0.0 when there are none)."""
    return sum(map(bool, outcomes)) / len(outcomes) if outcomes else 0.0


def label_steps(steps: Sequence[str], outcomes: dict[tuple[str, ...], Sequence[bool]],
                solution_correct: bool) -> tuple[list[int], list[float]]:
    """Hard and soft labels for each step: from the continuation outcomes of its prefix, or, for
    a final Answer step, the solution's own outcome."""
    hard, soft = [], []
    for i, step in enumerate(steps):
        if is_final(step):
            results: Sequence[bool] = [solution_correct]
        else:
            results = outcomes[tuple(steps[: i + 1])]
        hard.append(hard_label(results))
        soft.append(soft_label(results))
    return hard, soft


def step_row(prompt: str, steps: Sequence[str], hard: Sequence[int],
             soft: Sequence[float], exact: Sequence[bool] | None = None) -> dict:
    """A `training.prm` row: `labels` hard (0/1), `soft_labels` the fractions, and, when the task
    has a step checker, `exact_labels` its verdicts (0/1)."""
    if not (len(steps) == len(hard) == len(soft)) or (exact is not None
                                                       and len(exact) != len(steps)):
        raise ValueError(f"{len(steps)} steps, {len(hard)} hard and {len(soft)} soft labels")
    row = {"prompt": prompt, "completions": list(steps), "labels": [int(h) for h in hard],
           "soft_labels": [round(float(s), 4) for s in soft]}
    if exact is not None:
        row["exact_labels"] = [int(bool(e)) for e in exact]
    return row


def agreement(hard: Sequence[int], exact: Sequence[bool]) -> float | None:
    """The fraction of steps whose hard label equals the exact step checker's verdict."""
    if len(hard) != len(exact):
        raise ValueError(f"{len(hard)} labels but {len(exact)} verdicts")
    return sum(int(h) == int(e) for h, e in zip(hard, exact)) / len(hard) if hard else None
