"""Scoring steps by a reward model's next token after a step tag: P(good) over {good, bad}.

The demo `prm` adapter and a Math-Shepherd-style `token_prm` both work this way; they differ
only in how a path is written out (`TaggedPath`) and which tokens are the labels. Steps of one
path in a batch (the prefixes of its longest item) are scored by one prompt-logprobs request
over the longest path, read after every tag: one prefill instead of one request per step. A
lone step (a search leaf) is one next-token request; those of a batch go to the engine
concurrently, so its scheduler runs them together and their shared prefixes hit the prefix
cache.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from engine.protocol import Engine, SamplingParams
from verifiers.protocol import StepItem


@dataclass(frozen=True)
class TaggedPath:
    """A path written out for the reward model: `text`, and after each step's tag the offset
    in `text` where that tag ends (the model's next token there is the step's label)."""

    text: str
    tag_ends: tuple[int, ...]
    add_special_tokens: bool = True  # False when `text` holds them already (a chat template)

    def query(self, steps: int) -> str:
        """The text whose next token labels step `steps` (1-based): the path up to its tag."""
        return self.text[: self.tag_ends[steps - 1]]


@dataclass(frozen=True)
class Labels:
    good: str = "+"
    bad: str = "-"

    def probability(self, logprobs: Mapping[str, float]) -> float:
        """P(good) over {good, bad} from the top-k next-token logprobs, each label matched as
        the tokenizer names it ("+", or "Ġ+" / "▁+" with a word-start marker). A label missing
        from the top-k is at most as likely as the least likely token listed, so it gets that
        logprob (an estimate that never turns "unlisted" into a hard 0 or 1); both missing:
        0.5."""
        good, bad = _label_logprob(logprobs, self.good), _label_logprob(logprobs, self.bad)
        if good is None and bad is None:
            return 0.5
        floor = min(logprobs.values())
        good, bad = floor if good is None else good, floor if bad is None else bad
        top = max(good, bad)
        return math.exp(good - top) / (math.exp(good - top) + math.exp(bad - top))


_WORD_START = ("Ġ", "▁", " ")


def _label_logprob(logprobs: Mapping[str, float], label: str) -> float | None:
    found = [lp for token, lp in logprobs.items()
             if token == label or (token[:1] in _WORD_START and token[1:] == label)]
    if not found:
        return None
    top = max(found)
    return top + math.log(sum(math.exp(lp - top) for lp in found))


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
        ids = self._encode(path, path.text)
        positions = {}
        for index in members:
            query = self._encode(path, path.query(len(items[index].steps)))
            if ids[: len(query)] != query or len(query) >= len(ids):
                # a tokenizer that merges across the tag: each step on its own
                found = await asyncio.gather(*(self._next_token(path, len(items[i].steps))
                                               for i in members))
                return dict(zip(members, found))
            positions[index] = len(query)
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=self.top_k,
                                final_only=True, detokenize=False)
        prompt_logprobs = None
        outputs = self.engine.generate(ids, params, f"prm-{uuid.uuid4().hex}", self.adapter)
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
