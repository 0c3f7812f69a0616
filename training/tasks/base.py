"""What the demo tasks share: the `Problem` record, exact operator arithmetic, step splitting,
and whether a completion states the right answer (read by the server's rule)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from search.answers import extract_answer, normalize

_ANSWER = re.compile(r"^\s*Answer:\s*(-?\d+)\s*$")


def apply_op(a: int, op: str, b: int) -> int | None:
    """The exact integer result of `a op b` for op in + - * /; None for a division that does
    not come out whole (or by zero)."""
    if op == "/":
        return a // b if b and a % b == 0 else None
    if op not in "+-*":
        raise ValueError(f"unknown operator {op!r}")
    return a + b if op == "+" else a - b if op == "-" else a * b


@dataclass(frozen=True)
class Problem:
    id: str
    task: str  # "arithmetic" | "countdown"
    prompt: str  # the user message; a completion prompt is `prompt + "\n"`
    answer: str  # the value a correct completion ends with, as text
    difficulty: int


def draw_problems(name: str, levels: range, level_unit: str, seed: int, count: int,
                  difficulty: int | None,
                  draw: Callable[[random.Random, int], tuple[str, str, str]]
                  ) -> list[tuple[Problem, str]]:
    """`count` problems of task `name` with their worked solutions, deterministic in (seed,
    difficulty); None draws each problem's level uniformly from `levels`. `draw(rng, level)`
    gives a problem's prompt, answer and worked solution. The committed data and benchmark seed
    streams depend on this order of draws: the level (when not fixed), then the problem."""
    if difficulty is not None and difficulty not in levels:
        raise ValueError(f"{name} difficulty must be in {levels[0]}..{levels[-1]} "
                         f"({level_unit}), got {difficulty}")
    rng = random.Random(f"{name}:{seed}:{difficulty}")
    problems = []
    for i in range(count):
        level = difficulty if difficulty is not None else rng.choice(levels)
        prompt, answer, worked = draw(rng, level)
        problems.append((Problem(f"{name}-{seed}-{difficulty}-{i}", name, prompt, answer, level),
                         worked))
    return problems


def completion_prompt(problem: Problem) -> str:
    """The raw completion prompt the demo model is trained on: the message and a newline."""
    return problem.prompt + "\n"


def split_steps(completion: str) -> list[str]:
    """Non-empty lines of a completion, stripped, up to and including the first `Answer:` line."""
    steps: list[str] = []
    for line in completion.split("\n"):
        line = line.strip()
        if not line:
            continue
        steps.append(line)
        if _ANSWER.match(line):
            break
    return steps


def answer_of_step(step: str) -> int | None:
    """The number on an `Answer: N` line, or None when the line is not one."""
    match = _ANSWER.match(step)
    return int(match.group(1)) if match else None


def states_answer(completion: str, answer: str) -> bool:
    """Whether the final answer `completion` states is `answer`, read by the server's rule for
    an answer line (`search.answers`' `answer` extractor: the last "Answer: X" line,
    normalized). Not `auto`'s fallback to the last number: the exact checker grades a solution
    that states its answer, so a path cut off before its "Answer:" line is wrong (and earns
    RL's exact reward nothing), while a vote may still read it."""
    return extract_answer(completion, "answer") == normalize(answer)
