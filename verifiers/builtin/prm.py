"""`prm`: the process reward model, a LoRA adapter of the served base (`training.prm`).

Each step is scored by P(GOOD) over {GOOD, BAD} for the next token after the step's tag
(verifiers/reward_format.py). The steps of a batch go to the engine concurrently, so its
scheduler runs them in the same forward passes, and their shared prefixes hit the prefix cache.

Config (`verifier_config.prm`): {"adapter": name of the PRM adapter (default "prm"),
"top_k": how many next-token logprobs to read (default 20)}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_format import good_probability, step_query


class PRMVerifier:
    name = "prm"

    def __init__(self, deps) -> None:
        if deps is None or deps.engine is None or deps.adapter_scope is None:
            raise ValueError("the prm verifier needs an engine and an adapter registry")
        config = deps.config_for(self.name)
        self._engine = deps.engine
        self._adapter_scope = deps.adapter_scope
        self._adapter = config.get("adapter", "prm")
        self._top_k = int(config.get("top_k", 20))

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        async with self._adapter_scope(self._adapter) as adapter:
            logprobs = await asyncio.gather(*(
                self._engine.next_token_logprobs(step_query(item.problem, item.steps),
                                                 self._top_k, adapter)
                for item in items))
        return [good_probability(top) for top in logprobs]
