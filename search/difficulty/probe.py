"""`probe`: difficulty from the model's own uncertainty on a few cheap samples of the problem.

One request samples `samples` short solutions (n = samples). Two signals, each in [0, 1]:
answer disagreement (1 - the majority answer's share, scaled so that all-different is 1) and
first-step spread (distinct first steps, scaled the same way; a cheap stand-in for the entropy
of the first step). d = weight * disagreement + (1 - weight) * spread.
Config (`difficulty_config.probe`): {"samples": 4, "max_tokens": 128, "temperature": 1.0,
"weight": 0.75}.
"""

from __future__ import annotations

import uuid
from collections import Counter

from search.answers import extract_answer
from search.difficulty.protocol import Estimate
from search.problem import SearchProblem
from engine.protocol import SamplingParams


class ProbeEstimator:
    name = "probe"

    def __init__(self, deps) -> None:
        if deps is None or deps.engine is None:
            raise ValueError("the probe estimator needs an engine")
        config = deps.config_for(self.name)
        self._engine = deps.engine
        self.samples = int(config.get("samples", 4))
        self.max_tokens = int(config.get("max_tokens", 128))
        self.temperature = float(config.get("temperature", 1.0))
        self.weight = float(config.get("weight", 0.75))
        if self.samples < 2:
            raise ValueError("the probe needs at least 2 samples to measure agreement")

    async def estimate(self, problem: SearchProblem) -> Estimate:
        params = SamplingParams(max_tokens=self.max_tokens, temperature=self.temperature,
                                n=self.samples, final_only=True)
        texts = [""] * self.samples
        tokens = 0
        ids = self._engine.encode(problem.prompt, add_special_tokens=problem.add_special_tokens)
        outputs = self._engine.generate(ids, params, f"probe-{uuid.uuid4().hex}",
                                        problem.adapter)
        try:
            async for out in outputs:
                for choice in out.choices:
                    texts[choice.index] += choice.text
                    tokens += len(choice.token_ids)
        finally:
            await outputs.aclose()
        return Estimate(uncertainty(texts, problem.delimiter, self.weight), tokens)


def uncertainty(texts: list[str], delimiter: str, weight: float) -> float:
    n = len(texts)
    answers = Counter(extract_answer(t) for t in texts)
    majority = max((c for a, c in answers.items() if a is not None), default=0)
    disagreement = (1 - majority / n) * n / (n - 1)
    first_steps = {t.strip().split(delimiter)[0].strip() for t in texts}
    spread = (len(first_steps) - 1) / (n - 1)
    return min(max(weight * disagreement + (1 - weight) * spread, 0.0), 1.0)
