"""A demo task with an optional band of levels: 'countdown', 'arithmetic/6-8', 'arithmetic/3'."""

from __future__ import annotations

import re

from training.tasks import TASKS, Problem, get_task

_SELECTOR = re.compile(r"^([a-z_]+)(?:/(\d+)(?:-(\d+))?)?$")


def parse_selector(selector: str) -> tuple[str, list[int] | None]:
    """(task name, levels or None for the task's own uniform mix); ValueError names the fix."""
    match = _SELECTOR.match(selector)
    if not match or match.group(1) not in TASKS:
        raise ValueError(f"task selector must be NAME or NAME/LO-HI with NAME in {sorted(TASKS)};"
                         f" got {selector!r}")
    name, low, high = match.group(1), match.group(2), match.group(3)
    if low is None:
        return name, None
    levels = list(range(int(low), int(high or low) + 1))
    allowed = get_task(name).LEVELS
    if not levels or any(level not in allowed for level in levels):
        raise ValueError(f"{name} levels are {allowed.start}..{allowed.stop - 1}; got {selector!r}")
    return name, levels


def worked_problems(selector: str, seed: int, count: int) -> list[tuple[Problem, str]]:
    """`count` problems with worked solutions, split evenly over the selected levels."""
    name, levels = parse_selector(selector)
    task = get_task(name)
    if levels is None:
        return task.generate_worked(seed=seed, count=count)
    shares = [count // len(levels) + (i < count % len(levels)) for i in range(len(levels))]
    return [pair for level, n in zip(levels, shares)
            for pair in task.generate_worked(seed=seed, count=n, difficulty=level)]
