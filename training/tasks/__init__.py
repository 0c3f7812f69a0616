"""Demo reasoning tasks: seeded generators, worked solutions, exact and per-step checkers.

Each task is a module with the same functions (see `Task`); `TASKS` maps names to them.
The completion prompt is the problem's message followed by a newline.
"""

from __future__ import annotations

from typing import Protocol

from training.tasks import arithmetic, countdown, physics
from training.tasks.base import Problem, answer_of_step, completion_prompt, states_answer

__all__ = ["Problem", "Task", "TASKS", "get_task", "from_prompt", "step_labels",
           "step_solvable", "solvable_labels", "completion_prompt", "states_answer"]


class Task(Protocol):
    """What a task module provides."""

    NAME: str
    LEVELS: range

    def generate(self, seed: int, count: int, difficulty: int | None = None) -> list[Problem]: ...
    def generate_worked(self, seed: int, count: int, difficulty: int | None = None
                        ) -> list[tuple[Problem, str]]: ...
    def solution(self, problem: Problem) -> str: ...
    def check(self, problem: Problem, completion: str) -> bool: ...
    def check_step(self, problem: Problem, previous_steps: list[str], step: str) -> bool: ...
    def still_solvable(self, problem: Problem, steps: list[str]) -> bool: ...
    def from_prompt(self, prompt: str, id: str = "") -> Problem | None: ...


# Modules satisfy the protocol structurally.
TASKS: dict[str, Task] = {
    "arithmetic": arithmetic, "countdown": countdown, "physics": physics}  # type: ignore


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None


def from_prompt(prompt: str) -> Problem | None:
    """The problem a prompt states, for whichever task's format it matches (None if none)."""
    for task in TASKS.values():
        problem = task.from_prompt(prompt)
        if problem is not None:
            return problem
    return None


def step_labels(problem: Problem, steps: list[str]) -> list[int]:
    """The exact step checker's verdict (1 valid, 0 not) on each step after the ones before it."""
    task = get_task(problem.task)
    return [int(task.check_step(problem, steps[:i], step)) for i, step in enumerate(steps)]


def step_solvable(problem: Problem, previous_steps: list[str], step: str) -> bool:
    """Is `step` valid after `previous_steps`, with the problem still solvable after it? A value
    verdict, exact where Math-Shepherd's (`training.rollouts`) estimates it from sampled
    continuations."""
    task = get_task(problem.task)
    if not task.check_step(problem, previous_steps, step):
        return False
    # A valid `Answer:` line is the solution itself.
    return (answer_of_step(step.strip()) is not None
            or task.still_solvable(problem, [*previous_steps, step]))


def solvable_labels(problem: Problem, steps: list[str]) -> list[int]:
    """`step_solvable` on each step after the ones before it (1 or 0), as `step_labels`."""
    return [int(step_solvable(problem, steps[:i], step)) for i, step in enumerate(steps)]
