"""`syntax`: is the step well formed for its task? One operation per line, or the Answer line.

The task is recognised from the problem's format (the demo tasks); a problem of no known format
is not judged (1.0): this verifier checks form, not content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from verifiers.protocol import ScoringContext, StepItem

ANSWER = re.compile(r"^Answer: -?\d+$")
STEP_FORMATS = {
    # problem pattern -> the form of one step
    re.compile(r"^Compute: \d+(?:[+\-*]\d+)*$"): re.compile(r"^\d+[+\-*]\d+=-?\d+$"),
    re.compile(r"^Numbers: \d+(?: \d+)+ Target: \d+$"): re.compile(r"^\d+[+\-*/]\d+=\d+$"),
}


class SyntaxVerifier:
    name = "syntax"
    exact = True  # an exact check of form (verifiers/disagreement.py)

    def __init__(self, deps=None) -> None:
        pass

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        return [self.score_item(item) for item in items]

    @staticmethod
    def score_item(item: StepItem) -> float:
        step_format = next((fmt for problem, fmt in STEP_FORMATS.items()
                            if problem.match(item.problem.strip())), None)
        if step_format is None:
            return 1.0
        steps = [s.strip() for s in item.steps]
        if any(ANSWER.match(s) for s in steps[:-1]):
            return 0.0  # nothing may follow the Answer line
        step = steps[-1] if steps else ""
        if item.is_final and not ANSWER.match(step):
            return 0.0  # a finished solution ends with its Answer line
        return 1.0 if ANSWER.match(step) or step_format.match(step) else 0.0
