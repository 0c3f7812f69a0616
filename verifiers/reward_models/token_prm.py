"""A Math-Shepherd-style process reward model: a causal LM that, after the step tag following
each step, predicts a good or a bad label token. A step's score is P(good) over {good, bad}
from its own generating engine's next-token logprobs (verifiers/label_scoring.py: one
prompt-logprobs request per path).

Math-Shepherd reads plain text, `{question} {step 1} ки\\n{step 2} ки`; a chat-tuned token PRM
reads the conversation in its chat template (`prompt_format: "chat"`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from engine.protocol import Engine
from verifiers.label_reading import Labels, TaggedPath
from verifiers.label_scoring import score_tagged
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_models.reading import write_path
from verifiers.reward_models.spec import TokenPRMSpec, cost_of


class TokenPRMVerifier:
    def __init__(self, name: str, spec: TokenPRMSpec, engine: Engine) -> None:
        self.name = name
        self.cost = cost_of(spec)
        self._spec = spec
        self._engine = engine
        self._labels = Labels(spec.good_token, spec.bad_token)

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        return await score_tagged(self._engine, items, lambda item: self._write(item, context),
                                  self._labels, self._spec.top_k)

    def _write(self, item: StepItem, context: ScoringContext) -> TaggedPath:
        path = write_path(self._engine, self._spec, item, context, self._spec.step_tag)
        if path.tag_ends[-1] == len(path.text):
            # something must follow the last tag for a prompt-logprobs request to read after it
            path = dataclasses.replace(path, text=path.text + "\n")
        return path
