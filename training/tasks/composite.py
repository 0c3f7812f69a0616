"""Composite: a countdown problem whose target, and one of whose numbers, are arithmetic
problems to solve first, each in brackets:

    Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Compute: 17*3+48]

Its parts are of two families (arithmetic in the brackets, countdown for the rest), each with
its adapter, though the base model does every part nearly as well; the two arithmetic parts are
independent of each other (`numbers=2` or 3 brackets more of the countdown's numbers). With
`target="physics"` the target is a physics problem instead (`training.tasks.physics`, levels
1-4), whose answer's number is the target:

    Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Physics: v=9 m/s, t=5 s. Find d in m.]

a part only the physics adapter solves (the base model and the other adapters never do), while
the physics adapter solves nothing else: no single model answers every part. It declares
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

from training.tasks import arithmetic, countdown, physics
from training.tasks.base import Problem

NAME = "composite"
DECOMPOSER = "brackets"
LEVELS = range(1, 4)  # the countdown part's level
TARGET_LEVELS = range(5, 8)  # operations of the target's arithmetic
NUMBER_LEVELS = range(2, 5)  # operations of the bracketed number's arithmetic
_POOL_SIZE = 4000  # arithmetic problems drawn per level to find one with a given answer
# a target's family: (its task, its levels, problems drawn per level; physics problems are
# slower to draw and their answers repeat)
TARGETS = {"arithmetic": (arithmetic, TARGET_LEVELS, _POOL_SIZE),
           "physics": (physics, physics.LEVELS, 1000)}


@dataclass(frozen=True)
class Composite:
    problem: Problem  # prompt: the composite question; answer: the target
    countdown: Problem  # the resolved countdown problem
    parts: tuple[Problem, ...]  # the bracketed sub-problems: the target's, then the numbers'
    # in the order they are written


def generate(seed: int, count: int, difficulty: int | None = None,
             target: str = "arithmetic", numbers: int = 1) -> list[Composite]:
    """`count` composites, deterministic in (seed, difficulty, target, numbers); None draws
    each level; `target`: the family of the target's problem (a key of TARGETS); `numbers`:
    how many of the countdown's numbers are bracketed arithmetic problems (independent parts
    beside the target: 1 to 3)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}; got {target!r}")
    if not 1 <= numbers <= 3:
        raise ValueError(f"numbers must be 1 to 3 (a countdown has at least 3); got {numbers}")
    family, target_levels, target_pool_size = TARGETS[target]
    rng = random.Random(f"{NAME}:{seed}:{difficulty}" if target == "arithmetic"
                        else f"{NAME}:{target}:{seed}:{difficulty}")
    pools = {level: _by_answer(arithmetic, seed, level, _POOL_SIZE) for level in NUMBER_LEVELS}
    target_pools = {level: _by_answer(family, seed, level, target_pool_size)
                    for level in target_levels}
    name = NAME if target == "arithmetic" else f"{NAME}_{target}"
    if numbers > 1:
        name += f"_{numbers}"
    found: list[Composite] = []
    tries = 0
    while len(found) < count:
        tries += 1
        level = difficulty if difficulty is not None else rng.choice(LEVELS)
        (cd,) = countdown.generate(seed * 100_003 + tries, 1, level)
        values, wanted = countdown.parse(cd.prompt)
        target_part = _pick(target_pools, target_levels, wanted, rng)
        # one number: the draw the first composites were made with (they stay the same)
        at = ([rng.randrange(len(values))] if numbers == 1
              else sorted(rng.sample(range(len(values)), numbers)))
        number_parts = [_pick(pools, NUMBER_LEVELS, values[i], rng) for i in at]
        if target_part is None or None in number_parts:
            continue
        shown = [str(n) for n in values]
        for i, part in zip(at, number_parts):
            shown[i] = f"[{part.prompt}]"
        prompt = f"Numbers: {' '.join(shown)} Target: [{target_part.prompt}]"
        i = len(found)
        found.append(Composite(Problem(f"{name}-{seed}-{difficulty}-{i}", NAME, prompt,
                                       str(wanted), level),
                               cd, (target_part, *number_parts)))
    return found


def _by_answer(family, seed: int, level: int, size: int) -> dict[int, list[Problem]]:
    """`size` of the family's problems of `level` by their whole-number answer (a physics
    answer's number: `245 kg*m/s` is 245; others are left out)."""
    pool: dict[int, list[Problem]] = {}
    for p in family.generate(seed, size, level):
        value = p.answer.split()[0]
        if value.lstrip("-").isdigit():
            pool.setdefault(int(value), []).append(p)
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
