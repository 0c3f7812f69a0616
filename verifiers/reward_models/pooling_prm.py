"""A process reward model with a token-classification head, served by vLLM's pooling runner
(`Qwen2ForProcessRewardModel`: the Qwen2.5-Math-PRM family).

The path is the assistant's reply in the model's chat template, every step followed by the
separator token (`<extra_0>`); a step's score is the softmax probability of the positive class
at its separator. The steps of one path in a batch (the prefixes of its longest item) are read
from one pooling request over the longest path: the head at a separator sees only what precedes
it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from engine.protocol import Engine
from verifiers.label_scoring import paths
from verifiers.protocol import ScoringContext, StepItem
from verifiers.probabilities import softmax_at
from verifiers.reward_models.reading import write_path
from verifiers.reward_models.spec import PoolingPRMSpec, cost_of


class PoolingPRMVerifier:
    def __init__(self, name: str, spec: PoolingPRMSpec, engine: Engine) -> None:
        self.name = name
        self.cost = cost_of(spec)
        self._spec = spec
        self._engine = engine

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        separator = self._separator_id()
        scores = [0.5] * len(items)
        found = await asyncio.gather(*(self._path(items, members, context, separator)
                                       for members in paths(items)))
        for group in found:
            for index, score in group.items():
                scores[index] = score
        return scores

    def _separator_id(self) -> int:
        ids = self._engine.encode(self._spec.separator, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"separator {self._spec.separator!r} is {len(ids)} tokens for "
                             f"{self._engine.model_name!r}; it must be one (a special token)")
        return ids[0]

    async def _path(self, items: Sequence[StepItem], members: list[int], context: ScoringContext,
                    separator: int) -> dict[int, float]:
        longest = items[members[-1]]
        path = write_path(self._engine, self._spec, longest, context, self._spec.separator)
        ids = self._engine.encode(path.text, add_special_tokens=path.add_special_tokens)
        rows = await self._engine.pool(ids, "token_classify")
        steps = len(longest.steps)
        if len(rows) == len(ids):  # every token's row: keep the separators'
            rows = [row for row, token in zip(rows, ids) if token == separator]
        if len(rows) < steps:
            raise ValueError(f"{len(rows)} separator rows for {steps} steps: the chat template "
                             f"of {self._engine.model_name!r} dropped a {self._spec.separator!r}")
        rows = rows[-steps:]  # the reply's (a separator in the question comes before them)
        return {i: softmax_at(rows[len(items[i].steps) - 1], self._spec.positive_label)
                for i in members}
