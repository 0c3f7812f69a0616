"""How reward-model adapters see a solution: the contract between `training.prm`/`training.reward`
(and the training code that reads these adapters: `training.rl`'s rewards, their evaluation) and
the `prm`/`orm` verifiers that serve them. Where and how a label is read is
verifiers/label_reading.py.

A step tag follows each step; the reward model's next token after a tag is GOOD or BAD, and the
step's score is P(GOOD) renormalised over {GOOD, BAD}:

    Compute: 2+3*4            <- problem
    3*4=12 #                  <- step, tag: the PRM predicts "+" or "-" after "#"
    2+12=14 #
    Answer: 14 #

The ORM reads a whole solution as one step (`outcome_query`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from verifiers.label_reading import Labels, TaggedPath

STEP_TAG = " #"
GOOD = "+"
BAD = "-"


def tagged_path(problem: str, steps: Sequence[str]) -> str:
    """The whole path with a tag after every step (one newline after each tag)."""
    return problem.rstrip("\n") + "\n" + "".join(f"{step}{STEP_TAG}\n" for step in steps)


def step_query(problem: str, steps: Sequence[str]) -> str:
    """The text whose next token scores the last of `steps`: the path up to its tag."""
    return tagged_path(problem, steps)[:-1]


def outcome_query(problem: str, steps: Sequence[str]) -> str:
    """The text whose next token is the ORM's judgement of the solution `steps`: the whole
    solution as one step, up to its tag."""
    return step_query(problem, ["\n".join(steps)])


def written_path(problem: str, steps: Sequence[str]) -> TaggedPath:
    """`tagged_path` with where each tag ends (for `verifiers.label_scoring`)."""
    text = tagged_path(problem, steps)
    ends, end = [], len(problem.rstrip("\n")) + 1
    for step in steps:
        end += len(step) + len(STEP_TAG)
        ends.append(end)
        end += 1
    return TaggedPath(text, tuple(ends))


LABELS = Labels(GOOD, BAD)


def good_probability(logprobs: Mapping[str, float]) -> float:
    """P(GOOD) over {GOOD, BAD} from the top-k next-token logprobs (`Labels.probability`)."""
    return LABELS.probability(logprobs)
