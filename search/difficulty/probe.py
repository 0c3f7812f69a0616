"""`probe`: difficulty from the model's own uncertainty on a few cheap samples of the problem.

One request samples `samples` short solutions (n = samples), from the prompt's ids as a single
pass sends them, seeded by the request's seed when it has one (a temperature-0 request always
does: the same request is routed the same way). Two signals, each in [0, 1]: answer
disagreement (1 - the majority answer's share, scaled so that all-different is 1) and first-step
spread (distinct first steps, scaled the same way; a cheap stand-in for the entropy of the first
step). d = weight * disagreement + (1 - weight) * spread. Answers are read by the problem's
answer extractor (search.answers) and normalized; a sample that states none counts as its whole
normalized text, so free text ("The capital of France is Paris.") agrees with itself.
Config (`difficulty_config.probe`): {"samples": 4, "max_tokens": 128, "temperature": 1.0,
"weight": 0.75}.
"""

from __future__ import annotations

import uuid
from collections import Counter

from search.answers import answer_key
from search.difficulty.protocol import Estimate
from search.problem import SearchProblem
from search.steps import StepDelimiter
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
                                n=self.samples, seed=problem.seed, final_only=True)
        texts = [""] * self.samples
        tokens = 0
        ids = (list(problem.prompt_token_ids) if problem.prompt_token_ids is not None
               else self._engine.encode(problem.prompt,
                                        add_special_tokens=problem.add_special_tokens))
        outputs = self._engine.generate(ids, params, f"probe-{uuid.uuid4().hex}",
                                        problem.adapter)
        try:
            async for out in outputs:
                for choice in out.choices:
                    texts[choice.index] += choice.text
                    tokens += len(choice.token_ids)
        finally:
            await outputs.aclose()
        return Estimate(uncertainty(texts, problem.delimiter, self.weight,
                                    problem.answer_extractor), tokens)


def uncertainty(texts: list[str], delimiter: StepDelimiter, weight: float,
                extractor: str = "auto") -> float:
    n = len(texts)
    answers = Counter(answer_key(t, extractor) for t in texts)
    majority = max(answers.values())
    disagreement = (1 - majority / n) * n / (n - 1)
    first_steps = {delimiter.view(t) for t in texts}
    spread = (len(first_steps) - 1) / (n - 1)
    return min(max(weight * disagreement + (1 - weight) * spread, 0.0), 1.0)
