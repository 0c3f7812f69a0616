"""The engine-free half of `training.rollouts`: preference pairs from right and wrong samples, and
Math-Shepherd step labels from the outcomes of continuations sampled from each step's prefix,
gathered into the rows and summary the recipe writes.

A step is good if completions sampled from the prefix ending at it reach the right answer:
the hard label is 1 when any continuation does, the soft label the fraction that do
(Wang et al., 2024, "Math-Shepherd"). A final `Answer:` step needs no continuations: its
outcome is the solution's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from training.tasks import Problem, get_task, step_labels
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


def continuation_keys(problems: list[Problem], solutions: list[list[list[str]]]
                      ) -> list[tuple[int, tuple[str, ...]]]:
    """The distinct (problem index, step prefix) pairs whose continuations label a step."""
    keys: dict[tuple[int, tuple[str, ...]], None] = {}
    for index, steps_list in enumerate(solutions):
        for steps in steps_list:
            for prefix in prefixes_to_expand(steps):
                keys.setdefault((index, prefix), None)
    return list(keys)


def build_rows(problems: list[Problem], samples: list[list[str]], outcomes, max_pairs: int
               ) -> tuple[list[dict], list[dict], dict]:
    """Preference rows, step rows, and the summary's counts. `outcomes` None: no Math-Shepherd
    labels, the rows carry the step checker's only."""
    pairs, rows = [], []
    n_samples = n_correct = n_unique = 0
    hard_all, soft_all, exact_all = [], [], []
    per_task: dict[str, dict] = {}
    for index, (problem, completions) in enumerate(zip(problems, samples)):
        task = get_task(problem.task)
        judged = [(solution_text(c), task.check(problem, c)) for c in completions]
        n_samples += len(judged)
        n_correct += sum(ok for _, ok in judged)
        tally = per_task.setdefault(problem.task, {"solutions": 0, "correct": 0, "steps": 0,
                                                   "good": 0, "exact_good": 0, "agree": 0,
                                                   "hard": 0})
        tally["solutions"] += len(judged)
        tally["correct"] += sum(ok for _, ok in judged)
        pairs += preference_pairs(problem.prompt, judged, max_pairs or None)
        for text, ok in {t: ok for t, ok in judged if t}.items():
            steps = text.split("\n")
            n_unique += 1
            exact = step_labels(problem, steps)
            if outcomes is None:
                rows.append({"prompt": problem.prompt, "completions": steps,
                             "exact_labels": [int(e) for e in exact]})
                hard = soft = []
            else:
                keyed = {prefix: outcomes[(index, prefix)]
                         for prefix in prefixes_to_expand(steps)}
                hard, soft = label_steps(steps, keyed, ok)
                rows.append(step_row(problem.prompt, steps, hard, soft, exact))
            hard_all += hard
            soft_all += soft
            exact_all += exact
            tally["steps"] += len(steps)
            tally["good"] += sum(hard)
            tally["hard"] += len(hard)
            tally["exact_good"] += sum(exact)
            tally["agree"] += sum(h == int(e) for h, e in zip(hard, exact))
    counts = {
        "problems": len(problems), "solutions": n_samples, "unique_solutions": n_unique,
        "sample_accuracy": round(n_correct / n_samples, 4) if n_samples else None,
        "pairs": len(pairs), "step_rows": len(rows), "steps": len(exact_all),
        "good_step_fraction": round(sum(hard_all) / len(hard_all), 4) if hard_all else None,
        "mean_soft_label": round(sum(soft_all) / len(soft_all), 4) if soft_all else None,
        "exact_good_step_fraction":
            round(sum(exact_all) / len(exact_all), 4) if exact_all else None,
        "hard_label_agreement_with_check_step":
            round(agreement(hard_all, exact_all), 4) if hard_all else None,
        "by_task": {name: _task_summary(t) for name, t in per_task.items()},
    }
    return pairs, rows, counts


def _task_summary(t: dict) -> dict:
    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {"solutions": t["solutions"], "sample_accuracy": ratio(t["correct"], t["solutions"]),
            "steps": t["steps"], "good_step_fraction": ratio(t["good"], t["hard"]),
            "exact_good_step_fraction": ratio(t["exact_good"], t["steps"]),
            "hard_label_agreement_with_check_step": ratio(t["agree"], t["hard"])}
