"""`prm`: the process reward model, a LoRA adapter of the served base (`training.prm`).

Each step is scored by P(GOOD) over {GOOD, BAD} for the next token after the step's tag
(verifiers/reward_format.py), a path's steps in one prompt-logprobs request
(verifiers/label_scoring.py).

Its `cost` is 1: in a search it scores only the steps the cheap checks (`logic`, `syntax`) have
not ruled out (the scorer's gate), and the `orm` (cost 2) only what it leaves.

Config (`verifier_config.prm`): {"adapter": name of the PRM adapter (default "prm"),
"top_k": how many logprobs to read per position (default 20)}.
"""

from __future__ import annotations

from collections.abc import Sequence

from verifiers.label_scoring import ServedAdapter, score_tagged
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_format import LABELS, written_path


class PRMVerifier:
    name = "prm"
    cost = 1
    exact = False  # a learned model (verifiers/disagreement.py)

    def __init__(self, deps) -> None:
        self._served = ServedAdapter.configured(
            deps, self.name, "prm", "the prm verifier needs an engine and an adapter registry")
        self.adapter = self._served.name

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        served = self._served
        async with served.scope(served.name) as adapter:
            return await score_tagged(served.engine, items,
                                      lambda item: written_path(item.problem, item.steps),
                                      LABELS, served.top_k, adapter)
