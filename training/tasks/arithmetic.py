"""Multi-step integer arithmetic: `Compute: 48+17*3-29*2+11`.

Difficulty k (1..8) is the number of operations; operands are drawn from 1..(19 + 10k), so
they grow with the level up to 99. Problems are rejection-sampled so that every value in the
worked solution is a non-negative integer below 100000: the demo format has no negative numbers,
and a step that produces one is invalid.

The worked solution does one operation per line, multiplications first (left to right), then
additions and subtractions (left to right), and ends with `Answer: N`. The step checker also
accepts any other order that respects precedence and left-associativity.
"""

from __future__ import annotations

import random
import re

from training.tasks.base import (Problem, answer_of_step, apply_op, draw_problems, split_steps,
                                 states_answer)

__all__ = ["NAME", "LEVELS", "generate", "generate_worked", "solution", "check", "check_step",
           "still_solvable", "from_prompt", "evaluate"]

NAME = "arithmetic"
LEVELS = range(1, 9)
MAX_VALUE = 100_000
PREFIX = "Compute: "

_EXPRESSION = re.compile(r"^Compute: (\d+(?:[+\-*]\d+)*)$")
_TERM = re.compile(r"\d+|[+\-*]")
_STEP = re.compile(r"^(\d+)\s*([+\-*])\s*(\d+)\s*=\s*(-?\d+)$")

# An expression in flat form: numbers [n0, n1, ...] and the operators between them.
Expression = tuple[list[int], list[str]]


def max_operand(level: int) -> int:
    return min(99, 19 + 10 * level)


def parse(prompt: str) -> Expression | None:
    match = _EXPRESSION.match(prompt.strip())
    if not match:
        return None
    terms = _TERM.findall(match.group(1))
    return [int(t) for t in terms[0::2]], terms[1::2]


def _canonical_steps(nums: list[int], ops: list[str]) -> list[tuple[int, str, int, int]]:
    """(a, op, b, result) in the worked order: `*` left to right, then `+`/`-` left to right."""
    nums, ops = list(nums), list(ops)
    steps = []
    while ops:
        i = ops.index("*") if "*" in ops else 0
        a, op, b = nums[i], ops[i], nums[i + 1]
        c = apply_op(a, op, b)
        steps.append((a, op, b, c))
        nums[i : i + 2] = [c]
        del ops[i]
    return steps


def evaluate(prompt: str) -> int:
    """The true value of a prompt's expression (usual precedence)."""
    parsed = parse(prompt)
    if parsed is None:
        raise ValueError(f"not an arithmetic prompt: {prompt!r}; expected 'Compute: 48+17*3'")
    nums, ops = parsed
    return _value(nums, _canonical_steps(nums, ops))


def _value(nums: list[int], steps: list[tuple[int, str, int, int]]) -> int:
    """The expression's value: its last step's result, or its only number."""
    return steps[-1][3] if steps else nums[0]


def _sample(rng: random.Random, level: int) -> str:
    top = max_operand(level)
    while True:
        nums = [rng.randint(1, top) for _ in range(level + 1)]
        ops = [rng.choice("+-*") for _ in range(level)]
        if all(0 <= c < MAX_VALUE for *_, c in _canonical_steps(nums, ops)):
            expr = str(nums[0]) + "".join(op + str(n) for op, n in zip(ops, nums[1:]))
            return PREFIX + expr


def generate(seed: int, count: int, difficulty: int | None = None) -> list[Problem]:
    """`count` problems, deterministic in (seed, difficulty); None draws each level uniformly."""
    return [problem for problem, _ in generate_worked(seed, count, difficulty)]


def generate_worked(seed: int, count: int, difficulty: int | None = None
                    ) -> list[tuple[Problem, str]]:
    """Like `generate`, with each problem's worked solution."""
    return draw_problems(NAME, LEVELS, "operations", seed, count, difficulty, _draw)


def _draw(rng: random.Random, level: int) -> tuple[str, str, str]:
    prompt = _sample(rng, level)
    nums, ops = parse(prompt)  # type: ignore[misc]
    steps = _canonical_steps(nums, ops)
    return prompt, str(_value(nums, steps)), _worked(nums, steps)


def from_prompt(prompt: str, id: str = "") -> Problem | None:
    """A Problem rebuilt from prompt text alone (for verifiers that only see the request)."""
    parsed = parse(prompt)
    if parsed is None:
        return None
    return Problem(id or f"{NAME}-prompt", NAME, prompt.strip(), str(evaluate(prompt)),
                   len(parsed[1]))


def solution(problem: Problem) -> str:
    nums, ops = parse(problem.prompt)  # type: ignore[misc]
    return _worked(nums, _canonical_steps(nums, ops))


def _worked(nums: list[int], steps: list[tuple[int, str, int, int]]) -> str:
    lines = [f"{a}{op}{b}={c}" for a, op, b, c in steps]
    return "\n".join(lines + [f"Answer: {_value(nums, steps)}"])


def _reduce(state: Expression, step: str) -> Expression | None:
    """The expression after `step`, or None when the step is not a valid reduction of it."""
    nums, ops = state
    match = _STEP.match(step)
    if not match:
        return None
    a, op, b, c = int(match.group(1)), match.group(2), int(match.group(3)), int(match.group(4))
    if c != apply_op(a, op, b) or not 0 <= c < MAX_VALUE:
        return None
    for i, (x, o, y) in enumerate(zip(nums, ops, nums[1:])):
        if (x, o, y) != (a, op, b):
            continue
        before = ops[i - 1] if i > 0 else None
        after = ops[i + 1] if i + 1 < len(ops) else None
        # `*` binds tightest and is associative; `+`/`-` need no `*` beside them and nothing
        # but `+` (or the start) on the left, since a-(b+c) != a-b+c.
        if op == "*" or (after != "*" and before in (None, "+")):
            return nums[:i] + [c] + nums[i + 2 :], ops[:i] + ops[i + 1 :]
    return None


def _replay(problem: Problem, steps: list[str]) -> Expression | None:
    state = parse(problem.prompt)
    for step in steps:
        if state is None or answer_of_step(step) is not None:
            return None  # nothing is valid after the Answer line
        state = _reduce(state, step)
    return state


def check_step(problem: Problem, previous_steps: list[str], step: str) -> bool:
    """Is `step` valid after `previous_steps`? False whenever an earlier step was invalid.

    A step is one operation `a op b=c` on adjacent numbers of the current expression, correct
    and allowed by precedence, or `Answer: N` once the expression is reduced to N.
    """
    state = _replay(problem, [s.strip() for s in previous_steps])
    if state is None:
        return False
    step = step.strip()
    value = answer_of_step(step)
    if value is not None:
        nums, ops = state
        return not ops and nums[0] == value
    return _reduce(state, step) is not None


def check(problem: Problem, completion: str) -> bool:
    """Correct when the answer it states (`states_answer`) is the true value."""
    return states_answer(completion, problem.answer)


def still_solvable(problem: Problem, steps: list[str]) -> bool:
    """After valid steps an expression can always be finished: no step is a dead end."""
    return _replay(problem, [s.strip() for s in steps]) is not None


def check_steps(problem: Problem, completion: str) -> bool:
    """Stricter than `check`: every line is a valid step and the Answer line is reached."""
    steps = split_steps(completion)
    if not steps or answer_of_step(steps[-1]) is None:
        return False
    return all(check_step(problem, steps[:i], s) for i, s in enumerate(steps))
