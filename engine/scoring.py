"""`next_token_logprobs` for any engine: one greedy token with its top-k logprobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from engine.protocol import Engine, SamplingParams


async def next_token_logprobs(engine: Engine, prompt: str | Sequence[int], k: int,
                              adapter: str | None = None) -> dict[str, float]:
    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=k, detokenize=False,
                            final_only=True)
    top: dict[str, float] = {}
    async for out in engine.generate(prompt, params, f"score-{uuid.uuid4().hex}", adapter):
        for choice in out.choices:
            for position in choice.logprobs or ():
                top = position.top
    return top
