"""How reward-model adapters see a solution: the contract between `training.prm`/`training.reward`
and the `prm`/`orm` verifiers that serve them.

A step tag follows each step; the reward model's next token after a tag is GOOD or BAD, and the
step's score is P(GOOD) renormalised over {GOOD, BAD}:

    Compute: 2+3*4            <- problem
    3*4=12 #                  <- step, tag: the PRM predicts "+" or "-" after "#"
    2+12=14 #
    Answer: 14 #
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

STEP_TAG = " #"
GOOD = "+"
BAD = "-"


def tagged_path(problem: str, steps: Sequence[str]) -> str:
    """The whole path with a tag after every step (one newline after each tag)."""
    return problem.rstrip("\n") + "\n" + "".join(f"{step}{STEP_TAG}\n" for step in steps)


def step_query(problem: str, steps: Sequence[str]) -> str:
    """The text whose next token scores the last of `steps`: the path up to its tag."""
    return tagged_path(problem, steps)[:-1]


def good_probability(logprobs: Mapping[str, float]) -> float:
    """P(GOOD) over {GOOD, BAD} from the top-k next-token logprobs. A label missing from the
    top-k is at most as likely as the least likely token listed, so it gets that logprob (an
    estimate that never turns "unlisted" into a hard 0 or 1); both missing: 0.5."""
    if GOOD not in logprobs and BAD not in logprobs:
        return 0.5
    floor = min(logprobs.values())
    good, bad = logprobs.get(GOOD, floor), logprobs.get(BAD, floor)
    top = max(good, bad)
    return math.exp(good - top) / (math.exp(good - top) + math.exp(bad - top))
