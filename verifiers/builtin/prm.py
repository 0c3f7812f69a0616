"""`prm`: the process reward model, a LoRA adapter of the served base (`training.prm`).

Each step is scored by P(GOOD) over {GOOD, BAD} for the next token after the step's tag
(verifiers/reward_format.py). Steps of one path in a batch (the prefixes of its longest item)
are scored by one prompt-logprobs request over the whole tagged path, read at every tag: one
prefill instead of one request per step. A lone step (a search leaf) is one next-token request;
those of a batch go to the engine concurrently, so its scheduler runs them together and their
shared prefixes hit the prefix cache.

Its `cost` is 1: in a search it scores only the steps the cheap checks (`logic`, `syntax`) have
not ruled out (the scorer's gate), and the `orm` (cost 2) only what it leaves.

Config (`verifier_config.prm`): {"adapter": name of the PRM adapter (default "prm"),
"top_k": how many logprobs to read per position (default 20)}.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from engine.protocol import SamplingParams
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_format import good_probability, step_query, tagged_path


class PRMVerifier:
    name = "prm"
    cost = 1
    exact = False  # a learned model (verifiers/disagreement.py)

    def __init__(self, deps) -> None:
        if deps is None or deps.engine is None or deps.adapter_scope is None:
            raise ValueError("the prm verifier needs an engine and an adapter registry")
        config = deps.config_for(self.name)
        self._engine = deps.engine
        self._adapter_scope = deps.adapter_scope
        self._adapter = config.get("adapter", "prm")
        self._top_k = int(config.get("top_k", 20))

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        scores = [0.5] * len(items)
        async with self._adapter_scope(self._adapter) as adapter:
            results = await asyncio.gather(*(self._score_path(items, members, adapter)
                                             for members in paths(items)))
        for found in results:
            for index, score in found.items():
                scores[index] = score
        return scores

    async def _score_path(self, items: Sequence[StepItem], members: list[int],
                          adapter: str | None) -> dict[int, float]:
        """Scores of `members` (indices of items, each a prefix of the last one)."""
        if len(members) == 1:
            item = items[members[0]]
            top = await self._engine.next_token_logprobs(step_query(item.problem, item.steps),
                                                         self._top_k, adapter)
            return {members[0]: good_probability(top)}
        longest = items[members[-1]]
        ids = self._engine.encode(tagged_path(longest.problem, longest.steps))
        positions = {}
        for index in members:
            query = self._engine.encode(step_query(longest.problem, items[index].steps))
            if ids[: len(query)] != query:  # a tokenizer that merges across the tag
                return await self._one_by_one(items, members, adapter)
            positions[index] = len(query)
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=self._top_k,
                                final_only=True, detokenize=False)
        prompt_logprobs = None
        outputs = self._engine.generate(ids, params, f"prm-{uuid.uuid4().hex}", adapter)
        try:
            async for out in outputs:
                prompt_logprobs = out.prompt_logprobs or prompt_logprobs
        finally:
            await outputs.aclose()
        if prompt_logprobs is None:
            raise RuntimeError("the engine returned no prompt logprobs")
        return {index: good_probability(prompt_logprobs[p] or {})
                for index, p in positions.items()}

    async def _one_by_one(self, items, members, adapter) -> dict[int, float]:
        found: dict[int, float] = {}
        for scores in await asyncio.gather(*(self._score_path(items, [i], adapter)
                                             for i in members)):
            found.update(scores)
        return found


def paths(items: Sequence[StepItem]) -> list[list[int]]:
    """Groups item indices by path: each group is the items that are prefixes of its last
    (longest) item, in order of length."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i].steps))
    groups: list[list[int]] = []
    for i in order:
        item = items[i]
        for group in groups:
            head = items[group[0]]
            if head.problem == item.problem and head.steps[: len(item.steps)] == item.steps:
                group.append(i)
                break
        else:
            groups.append([i])
    return [group[::-1] for group in groups]
