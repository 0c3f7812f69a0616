"""Demo problems for a recipe: task selectors ('countdown', 'arithmetic/6-8', 'arithmetic/3'),
`count` problems split evenly over a selector's levels, drawn from a recipe's seed stream."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from training.components.seeds import problem_seed
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


def selector_errors(selectors: Sequence[str]) -> list[str]:
    """Each malformed selector's message (empty when all parse)."""
    errors = []
    for selector in selectors:
        try:
            parse_selector(selector)
        except ValueError as e:
            errors.append(str(e))
    return errors


def _level_shares(levels: list[int], count: int) -> list[tuple[int, int]]:
    """(level, how many) with `count` split evenly, the first levels taking the remainder."""
    return [(level, count // len(levels) + (i < count % len(levels)))
            for i, level in enumerate(levels)]


def worked_problems(selector: str, seed: int, count: int) -> list[tuple[Problem, str]]:
    """`count` problems with worked solutions, split evenly over the selected levels."""
    name, levels = parse_selector(selector)
    task = get_task(name)
    if levels is None:
        return task.generate_worked(seed=seed, count=count)
    return [pair for level, n in _level_shares(levels, count)
            for pair in task.generate_worked(seed=seed, count=n, difficulty=level)]


def selector_problems(selector: str, seed: int, count: int) -> list[Problem]:
    """The problems of `worked_problems`, without solving them."""
    name, levels = parse_selector(selector)
    task = get_task(name)
    if levels is None:
        return task.generate(seed, count)
    return [p for level, n in _level_shares(levels, count) for p in task.generate(seed, n, level)]


def draw_problems(selectors: Sequence[str], stream: str, seed: int, count: int,
                  exclude: Collection[str] = ()) -> list[Problem]:
    """`count` problems per selector from `stream`'s seed (`seeds.SEED_RANGES`), repeated (or
    excluded) prompts dropped, in selector order."""
    problems: dict[str, Problem] = {}
    for selector in selectors:
        for problem in selector_problems(selector, problem_seed(stream, seed), count):
            if problem.prompt not in exclude:
                problems.setdefault(problem.prompt, problem)
    return list(problems.values())
