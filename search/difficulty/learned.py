"""`learned`: difficulty from a LoRA adapter of the base trained by `python -m training.difficulty`.

The adapter reads the question followed by a tag and predicts whether the base model's greedy
answer to it is right: the next token after the tag is GOOD ("+", greedy solves it) or BAD ("-",
greedy fails), the labels of verifiers/reward_format.py. The difficulty is P(BAD) renormalised
over {GOOD, BAD}: d = 1 - P(GOOD), one next-token request, nothing generated.

    Compute: 22+36+26 #       <- difficulty_query(question): the adapter predicts "+" or "-"

Config (`difficulty_config.learned`): {"adapter": "difficulty", "top_k": 20}.
"""

from __future__ import annotations

from collections.abc import Mapping

from search.problem import SearchProblem
from verifiers.label_reading import probability
from verifiers.label_scoring import ServedAdapter
from verifiers.reward_format import LABELS, STEP_TAG


def difficulty_query(question: str) -> str:
    """The text whose next token the difficulty adapter predicts: the question, then the tag.
    Shared with `training.difficulty`, which trains on exactly this text."""
    return question.strip() + STEP_TAG


def difficulty_of_log_odds(log_odds: float) -> float:
    """d = 1 - P(GOOD) over {GOOD, BAD} from log P(GOOD) - log P(BAD): read here from the
    top-k logprobs, by `training.difficulty` from the adapter's logits."""
    return 1.0 - probability(log_odds)


def difficulty_from_logprobs(top_logprobs: Mapping[str, float]) -> float:
    """d from the top-k next-token logprobs (0.5: neither label listed)."""
    return difficulty_of_log_odds(LABELS.log_odds(top_logprobs))


class LearnedEstimator:
    name = "learned"

    def __init__(self, deps) -> None:
        self._served = ServedAdapter.configured(
            deps, self.name, "difficulty",
            "the learned difficulty estimator needs an engine and an adapter registry "
            "(adapter_scope); without them use the probe estimator")
        self.adapter = self._served.name
        if self._served.top_k < 2:
            raise ValueError("learned difficulty needs top_k >= 2 to see both label tokens")

    async def estimate(self, problem: SearchProblem) -> float:
        [top] = await self._served.next_tokens([difficulty_query(problem.question)])
        return min(max(difficulty_from_logprobs(top), 0.0), 1.0)
