"""Scoring steps by a reward model's next token after a step tag: P(good) over {good, bad}.

The demo `prm` adapter and a Math-Shepherd-style `token_prm` both work this way; they differ
only in how a path is written out (`TaggedPath`) and which tokens are the labels (where and how
a label is read, shared with training, is verifiers/label_reading.py). Steps of one path in a
batch (the prefixes of its longest item) are scored by one prompt-logprobs request over the
longest path, read after every tag: one prefill instead of one request per step. A lone step (a
search leaf) is one next-token request; those of a batch go to the engine concurrently, so its
scheduler runs them together and their shared prefixes hit the prefix cache.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from engine.protocol import Engine, SamplingParams
from verifiers.label_reading import Labels, TaggedPath, find_tags
from verifiers.protocol import StepItem


@dataclass(frozen=True)
class ServedAdapter:
    """A label-token adapter of the served base, as a component reads it: the engine, the
    adapter's name (`adapter` in the component's config; the server reserves it), how many
    logprobs to read (`top_k`, default 20), and `scope(name)`, which keeps the adapter loaded
    while it is read and gives its resident name."""

    engine: Engine
    scope: Callable[[str], AbstractAsyncContextManager[str]]
    name: str
    top_k: int

    @classmethod
    def configured(cls, deps, component: str, default: str, needs: str) -> ServedAdapter:
        """From a component's deps (engine, adapter_scope, config_for); `needs` is the error
        when they lack an engine or an adapter registry."""
        if deps is None or deps.engine is None or deps.adapter_scope is None:
            raise ValueError(needs)
        config = deps.config_for(component)
        return cls(deps.engine, deps.adapter_scope, str(config.get("adapter", default)),
                   int(config.get("top_k", 20)))

    async def next_tokens(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        """The top-k next-token logprobs after each prompt, read concurrently under one scope."""
        async with self.scope(self.name) as resident:
            return list(await asyncio.gather(*(
                self.engine.next_token_logprobs(prompt, self.top_k, resident)
                for prompt in prompts)))


async def score_tagged(engine: Engine, items: Sequence[StepItem],
                       write: Callable[[StepItem], TaggedPath], labels: Labels, top_k: int,
                       adapter: str | None = None) -> list[float]:
    """P(good) for each item's last step; `write` writes an item's whole path out."""
    scores = [0.5] * len(items)
    scorer = _PathScorer(engine, labels, top_k, adapter)
    results = await asyncio.gather(*(scorer.path(items, members, write(items[members[-1]]))
                                     for members in paths(items)))
    for found in results:
        for index, score in found.items():
            scores[index] = score
    return scores


@dataclass
class _PathScorer:
    engine: Engine
    labels: Labels
    top_k: int
    adapter: str | None

    def _encode(self, path: TaggedPath, text: str) -> list[int]:
        return self.engine.encode(text, add_special_tokens=path.add_special_tokens)

    async def path(self, items: Sequence[StepItem], members: list[int],
                   path: TaggedPath) -> dict[int, float]:
        """Scores of `members` (indices of items, each a prefix of the last one, whose path
        `path` is)."""
        if len(members) == 1:
            return {members[0]: await self._next_token(path, len(items[members[0]].steps))}
        reading = find_tags(path, lambda text: self._encode(path, text),
                            [len(items[i].steps) for i in members])
        if any(p is None or p + 1 >= len(reading.ids) for p in reading.positions):
            # a tokenizer that merges a tag with what follows it: each step on its own
            found = await asyncio.gather(*(self._next_token(path, len(items[i].steps))
                                           for i in members))
            return dict(zip(members, found))
        # prompt_logprobs[i] is the distribution of token i: the label after the tag at p
        positions = {index: p + 1 for index, p in zip(members, reading.positions)}
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=self.top_k,
                                final_only=True, detokenize=False)
        prompt_logprobs = None
        outputs = self.engine.generate(reading.ids, params, f"prm-{uuid.uuid4().hex}",
                                       self.adapter)
        try:
            async for out in outputs:
                prompt_logprobs = out.prompt_logprobs or prompt_logprobs
        finally:
            await outputs.aclose()
        if prompt_logprobs is None:
            raise RuntimeError("the engine returned no prompt logprobs")
        return {index: self.labels.probability(prompt_logprobs[p] or {})
                for index, p in positions.items()}

    async def _next_token(self, path: TaggedPath, steps: int) -> float:
        query = path.query(steps)
        # text goes as it is (the engine adds the special tokens), ids when it holds them
        prompt = query if path.add_special_tokens else self._encode(path, query)
        top = await self.engine.next_token_logprobs(prompt, self.top_k, self.adapter)
        return self.labels.probability(top)


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
