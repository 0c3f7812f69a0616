"""`orm`: the Bradley-Terry outcome reward model, a LoRA adapter of the base (`training.reward`).

It judges finished solutions only: a final item scores P(GOOD) over {GOOD, BAD} after the tag
that follows the whole solution (verifiers/reward_format.py); an unfinished path scores 1.0 (no
opinion, so the product is unchanged). Its `cost` is 2, the highest of the built-ins: in a search
it judges only the solutions whose cheaper verifiers' scores reach the scorer's gate, since each
judgement is a whole solution's prefill that shares no prefix-cache blocks with the policy's or
the PRM's. Config (`verifier_config.orm`): {"adapter": "orm",
"top_k": 20}.
"""

from __future__ import annotations

from collections.abc import Sequence

from verifiers.label_scoring import ServedAdapter
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_format import good_probability, outcome_query


class ORMVerifier:
    name = "orm"
    cost = 2
    exact = False  # a learned model (verifiers/disagreement.py)

    def __init__(self, deps) -> None:
        self._served = ServedAdapter.configured(
            deps, self.name, "orm", "the orm verifier needs an engine and an adapter registry")
        self.adapter = self._served.name

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        final = [i for i, item in enumerate(items) if item.is_final]
        scores = [1.0] * len(items)
        if not final:
            return scores
        tops = await self._served.next_tokens(
            [outcome_query(items[i].problem, items[i].steps) for i in final])
        for i, top in zip(final, tops):
            scores[i] = good_probability(top)
        return scores
