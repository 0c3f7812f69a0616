"""An outcome reward model with a sequence-classification head (`LlamaForSequenceClassification`,
`Qwen2ForSequenceClassification`; Skywork-Reward style), served by vLLM's pooling runner.

It judges finished solutions only: the conversation with the whole solution as the assistant's
reply, in the model's chat template, gets one reward r (or one logit per class); the score is
sigmoid((r - center) / scale) (or the positive class's probability). An unfinished path scores
1.0 (no opinion, so the product is unchanged).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from engine.protocol import Engine
from verifiers.protocol import ScoringContext, StepItem
from verifiers.probabilities import sigmoid, softmax_at
from verifiers.reward_models.reading import write_path
from verifiers.reward_models.spec import ClassifierORMSpec, cost_of


class ClassifierORMVerifier:
    def __init__(self, name: str, spec: ClassifierORMSpec, engine: Engine) -> None:
        self.name = name
        self.cost = cost_of(spec)
        self._spec = spec
        self._engine = engine

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        final = [i for i, item in enumerate(items) if item.is_final]
        scores = [1.0] * len(items)
        rewards = await asyncio.gather(*(self._score(items[i], context) for i in final))
        for i, score in zip(final, rewards):
            scores[i] = score
        return scores

    async def _score(self, item: StepItem, context: ScoringContext) -> float:
        path = write_path(self._engine, self._spec, item, context)
        ids = self._engine.encode(path.text, add_special_tokens=path.add_special_tokens)
        (logits,) = await self._engine.pool(ids, "classify")
        if len(logits) == 1:
            return sigmoid((logits[0] - self._spec.center) / self._spec.scale)
        return softmax_at(logits, self._spec.positive_label)
