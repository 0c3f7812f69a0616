"""Countdown: `Numbers: 3 7 25 50 Target: 353`.

Reach the target from 3-6 numbers with `+ - * /`, one operation per line (`50*7=350`), at most
5 operations, then `Answer: 353`. Every number, and every intermediate result, is used at most
once; results must be positive integers (so `-` only gives positives and `/` only when exact).

Problems are solvable by construction: difficulty d (1..5) combines d+1 of the numbers with d
random operations into the target (each intermediate a positive integer below 10000, the target
in 10..999 and not one of the given numbers); the other numbers are distractors. Levels 1-3 are
exact (no shorter solution exists); levels 4-5 have no solution shorter than 3 steps.
`generate_worked` returns the construction as the worked solution (what the demo model is
trained on); `solution` searches a shortest one from the prompt alone.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import lru_cache

from training.tasks.base import (Problem, answer_of_step, apply_op, draw_problems, split_steps,
                                 states_answer)

__all__ = ["NAME", "LEVELS", "generate", "generate_worked", "solution", "check", "check_step",
           "still_solvable", "from_prompt"]

NAME = "countdown"
LEVELS = range(1, 6)
MAX_STEPS = 5
MAX_VALUE = 10_000
POOL = [n for n in range(1, 11) for _ in range(2)] + [25, 50, 75, 100]

# Replay state: numbers still available, result of the last operation, operations done.
State = tuple[Counter, "int | None", int]

_PROMPT = re.compile(r"^Numbers: (\d+(?: \d+){1,5}) Target: (\d+)$")
_STEP = re.compile(r"^(\d+)\s*([+\-*/])\s*(\d+)\s*=\s*(-?\d+)$")


def parse(prompt: str) -> tuple[list[int], int] | None:
    match = _PROMPT.match(prompt.strip())
    if not match:
        return None
    return [int(n) for n in match.group(1).split()], int(match.group(2))


def _apply(a: int, op: str, b: int) -> int | None:
    """The result of `a op b` if it is a positive integer below MAX_VALUE, else None."""
    c = apply_op(a, op, b)
    return c if c is not None and 0 < c < MAX_VALUE else None


def _construct(rng: random.Random, level: int) -> tuple[list[int], int, list[str]]:
    while True:
        count = rng.randint(max(3, level + 1), 6)
        numbers = rng.sample(POOL, count)
        pool = rng.sample(numbers, level + 1)
        steps = []
        for _ in range(level):
            i, j = rng.sample(range(len(pool)), 2)
            a, b = max(pool[i], pool[j]), min(pool[i], pool[j])
            ops = ["+"] + ["-"] * (a != b) + ["*"] * (b > 1) + ["/"] * (b > 1 and a % b == 0)
            op = rng.choice(ops)
            c = _apply(a, op, b)
            if c is None:
                break
            steps.append(f"{a}{op}{b}={c}")
            pool = [x for k, x in enumerate(pool) if k not in (i, j)] + [c]
        else:
            target = pool[0]
            if not 10 <= target <= 999 or target in numbers:
                continue
            # Levels 1-3 are exact: no shorter solution exists (4-5 need at least 3 steps; an
            # exhaustive check at depth 3-4 would be too slow for making training data).
            if level > 1 and _search(numbers, target, min(level - 1, 2)) is not None:
                continue
            return sorted(numbers), target, steps


def _prompt(numbers: list[int], target: int) -> str:
    return f"Numbers: {' '.join(map(str, numbers))} Target: {target}"


def generate(seed: int, count: int, difficulty: int | None = None) -> list[Problem]:
    """`count` problems, deterministic in (seed, difficulty); None draws each level uniformly."""
    return [problem for problem, _ in generate_worked(seed, count, difficulty)]


def generate_worked(seed: int, count: int, difficulty: int | None = None
                    ) -> list[tuple[Problem, str]]:
    """Like `generate`, with each problem's worked solution: the construction (cheap)."""
    return draw_problems(NAME, LEVELS, "operations", seed, count, difficulty, _draw)


def _draw(rng: random.Random, level: int) -> tuple[str, str, str]:
    numbers, target, steps = _construct(rng, level)
    return _prompt(numbers, target), str(target), "\n".join(steps + [f"Answer: {target}"])


def from_prompt(prompt: str, id: str = "") -> Problem | None:
    """A Problem rebuilt from prompt text alone; difficulty is unknown there (0)."""
    parsed = parse(prompt)
    if parsed is None:
        return None
    return Problem(id or f"{NAME}-prompt", NAME, prompt.strip(), str(parsed[1]), 0)


def _search(values: list[int], target: int, depth: int) -> list[str] | None:
    """Depth-limited exhaustive search for at most `depth` steps reaching `target`."""
    steps = _search_sorted(tuple(sorted(values, reverse=True)), target, depth)
    return None if steps is None else list(steps)


@lru_cache(maxsize=1 << 16)
def _search_sorted(values: tuple[int, ...], target: int, depth: int) -> tuple[str, ...] | None:
    """`_search` on values sorted high to low, memoised: solvability labels ask about many
    overlapping states, and a dead end is only known after the whole subtree."""
    if depth == 0:
        return None
    for i, a in enumerate(values):
        for j in range(i + 1, len(values)):
            b = values[j]
            for op in "+-*/":
                c = _apply(a, op, b)
                if c is None:
                    continue
                step = f"{a}{op}{b}={c}"
                if c == target:
                    return (step,)
                if depth > 1:
                    rest = values[:i] + values[i + 1 : j] + values[j + 1 :] + (c,)
                    tail = _search_sorted(tuple(sorted(rest, reverse=True)), target, depth - 1)
                    if tail is not None:
                        return (step, *tail)
    return None


def solution(problem: Problem) -> str:
    """A shortest solution, found by search from the prompt alone (iterative deepening up to 5
    steps; tens of ms for the hardest). `generate_worked` gives the construction instead."""
    numbers, target = parse(problem.prompt)  # type: ignore[misc]
    for depth in range(1, MAX_STEPS + 1):
        steps = _search(numbers, target, depth)
        if steps is not None:
            return "\n".join(steps + [f"Answer: {target}"])
    raise ValueError(f"no solution within {MAX_STEPS} steps: {problem.prompt!r}")


def _replay(problem: Problem, steps: list[str]) -> State | None:
    """The state after `steps`, or None when one of them is invalid."""
    parsed = parse(problem.prompt)
    if parsed is None:
        return None
    state: State | None = (Counter(parsed[0]), None, 0)
    for step in steps:
        if state is None:
            return None
        state = _operate(state, step)
    return state


def _operate(state: State, step: str) -> State | None:
    available, _, done = state
    match = _STEP.match(step)
    if not match or done >= MAX_STEPS:
        return None
    a, op, b, c = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
    used = Counter([a, b])
    if _apply(a, op, b) != c or any(available[n] < k for n, k in used.items()):
        return None
    return available - used + Counter([c]), c, done + 1


def check_step(problem: Problem, previous_steps: list[str], step: str) -> bool:
    """Is `step` valid after `previous_steps`? False whenever an earlier step was invalid.

    An operation must be correct, give a positive integer, and use numbers still available;
    `Answer: N` is valid only right after an operation whose result is N and N is the target.
    """
    state = _replay(problem, [s.strip() for s in previous_steps])
    if state is None:
        return False
    step = step.strip()
    value = answer_of_step(step)
    if value is not None:
        return state[1] is not None and state[1] == value == int(problem.answer)
    return _operate(state, step) is not None


def still_solvable(problem: Problem, steps: list[str]) -> bool:
    """Can the target still be reached after `steps` (all valid), within the operations left?

    A valid step can still be a dead end (`25*50=1250` when the target needs the 25): what a
    step-level search needs its value function to see, and the step checker does not."""
    state = _replay(problem, [s.strip() for s in steps])
    if state is None:
        return False
    available, last, done = state
    target = int(problem.answer)
    if last == target:
        return True
    return _search(list(available.elements()), target, MAX_STEPS - done) is not None


def check(problem: Problem, completion: str) -> bool:
    """Correct only if every step is valid and the last one reaches the target, then
    `Answer: <target>`, and the answer the completion states (`states_answer`: what follows
    that line counts too) is the target: the Answer line alone proves nothing."""
    steps = split_steps(completion)
    if len(steps) < 2 or answer_of_step(steps[-1]) is None:
        return False
    return (all(check_step(problem, steps[:i], s) for i, s in enumerate(steps))
            and states_answer(completion, problem.answer))
