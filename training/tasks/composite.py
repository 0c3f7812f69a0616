"""Composite: a countdown problem whose target, and one of whose numbers, are arithmetic
problems to solve first, each in brackets:

    Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Compute: 17*3+48]

Its parts need different specialists (the arithmetic adapter for the brackets, the countdown
adapter for the rest), and the two arithmetic parts are independent of each other. It declares
the `brackets` decomposer (`search.swarm.decomposers`): a bracket is a sub-problem whose answer
takes its place. Not one of `TASKS`: the demo model is not trained on it.

A solution is right when its last block solves the resolved countdown problem (the numbers and
target with the right arithmetic answers in place) and states its target: a wrong arithmetic
answer leaves a countdown problem other than the true one, which does not count.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from training.tasks import arithmetic, countdown
from training.tasks.base import Problem

NAME = "composite"
DECOMPOSER = "brackets"
LEVELS = range(1, 4)  # the countdown part's level
TARGET_LEVELS = range(5, 8)  # operations of the target's arithmetic
NUMBER_LEVELS = range(2, 5)  # operations of the bracketed number's arithmetic
_POOL_SIZE = 4000  # arithmetic problems drawn per level to find one with a given answer


@dataclass(frozen=True)
class Composite:
    problem: Problem  # prompt: the composite question; answer: the target
    countdown: Problem  # the resolved countdown problem
    parts: tuple[Problem, ...]  # the arithmetic sub-problems (target's first)


def generate(seed: int, count: int, difficulty: int | None = None) -> list[Composite]:
    """`count` composites, deterministic in (seed, difficulty); None draws each level."""
    rng = random.Random(f"{NAME}:{seed}:{difficulty}")
    pools = {level: _by_answer(seed, level) for level in (*TARGET_LEVELS, *NUMBER_LEVELS)}
    found: list[Composite] = []
    tries = 0
    while len(found) < count:
        tries += 1
        level = difficulty if difficulty is not None else rng.choice(LEVELS)
        (cd,) = countdown.generate(seed * 100_003 + tries, 1, level)
        numbers, target = countdown.parse(cd.prompt)
        target_part = _pick(pools, TARGET_LEVELS, target, rng)
        at = rng.randrange(len(numbers))
        number_part = _pick(pools, NUMBER_LEVELS, numbers[at], rng)
        if target_part is None or number_part is None:
            continue
        shown = [str(n) for n in numbers]
        shown[at] = f"[{number_part.prompt}]"
        prompt = f"Numbers: {' '.join(shown)} Target: [{target_part.prompt}]"
        i = len(found)
        found.append(Composite(Problem(f"{NAME}-{seed}-{difficulty}-{i}", NAME, prompt,
                                       str(target), level),
                               cd, (target_part, number_part)))
    return found


def _by_answer(seed: int, level: int) -> dict[int, list[Problem]]:
    pool: dict[int, list[Problem]] = {}
    for p in arithmetic.generate(seed, _POOL_SIZE, level):
        pool.setdefault(int(p.answer), []).append(p)
    return pool


def _pick(pools, levels: range, answer: int, rng: random.Random) -> Problem | None:
    options = [p for level in levels for p in pools[level].get(answer, ())]
    return rng.choice(options) if options else None


_COUNTDOWN_LINE = re.compile(r"^Numbers: .*$", re.MULTILINE)


def check(item: Composite, completion: str) -> bool:
    """The last countdown block of `completion` solves the true resolved countdown problem:
    its question is that problem's and its solution is right."""
    blocks = list(_COUNTDOWN_LINE.finditer(completion))
    if not blocks:
        return False
    last = blocks[-1]
    stated = countdown.parse(last.group(0))
    if stated is None or stated != countdown.parse(item.countdown.prompt):
        return False
    return countdown.check(item.countdown, completion[last.end():])
