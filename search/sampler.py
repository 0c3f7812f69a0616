"""Engine calls of a search: sample the next step of a path (siblings in one request, n = k) or
finish a path. Every request's prompt is the problem's prompt plus the path, so siblings and
descendants share a prefix that vLLM's prefix cache reuses.

Cancelling the search (client gone) cancels the tasks iterating these requests; closing an
engine generator aborts its request, so nothing keeps running.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from search.budget import Budget
from search.params import SearchParams
from search.problem import SearchProblem, SearchStats
from engine.protocol import Engine, SamplingParams


@dataclass(frozen=True)
class Sample:
    steps: tuple[str, ...]  # one step when sampling a step; the rest of the path when finishing
    tokens: int
    final: bool  # the model ended the solution (end of sequence), not just the step
    truncated: bool  # cut by a token limit


class Sampler:
    def __init__(self, engine: Engine, problem: SearchProblem, params: SearchParams,
                 stats: SearchStats, budget: Budget) -> None:
        self.engine = engine
        self.problem = problem
        self.params = params
        self.stats = stats
        self.budget = budget
        self._calls = 0  # numbers each request, for its seed: same calls, same samples
        self._in_flight = 0
        self._busy_since = 0.0

    def prompt_for(self, steps: tuple[str, ...]) -> str:
        d = self.problem.delimiter
        return self.problem.prompt + "".join(step + d for step in steps)

    def answer_room(self, steps: tuple[str, ...]) -> int:
        """Tokens the answer may still take after `steps`. The request's max_tokens bounds the
        returned answer, every step of it, as it bounds a greedy one; this also keeps a long
        path inside the model's context (max_tokens defaults to the room the prompt leaves)."""
        d = self.problem.delimiter
        written = d.join(steps) + d if steps else ""
        used = len(self.engine.encode(written, add_special_tokens=False)) if written else 0
        return self.params.max_tokens - used

    async def sample_steps(self, steps: tuple[str, ...], k: int) -> list[Sample]:
        """k candidate next steps after `steps`, in one engine request."""
        room = max(self.answer_room(steps), 1)
        params = SamplingParams(
            max_tokens=min(self.params.max_step_tokens, room),
            temperature=self.params.temperature,
            top_p=self.params.top_p, n=k, stop=(self.problem.delimiter,),
            seed=self._next_seed(), final_only=True)
        outs = await self._generate(self.prompt_for(steps), params)
        return [Sample(steps=(text.strip(),), tokens=tokens,
                       final=reason == "stop" and stop is None, truncated=reason == "length")
                for text, tokens, reason, stop in outs]

    async def finish(self, steps: tuple[str, ...], n: int = 1,
                     temperature: float = 0.0) -> list[Sample]:
        """n completions of the path to the end (greedy by default), split into steps."""
        max_tokens = max(self.answer_room(steps), 1)
        left = self.budget.tokens_left()
        if left is not None:
            max_tokens = max(min(max_tokens, left // max(n, 1)), 1)
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature,
                                top_p=self.params.top_p if temperature > 0 else 1.0, n=n,
                                seed=self._next_seed() if temperature > 0 else None,
                                final_only=True)
        outs = await self._generate(self.prompt_for(steps), params)
        return [Sample(steps=split_steps(text, self.problem.delimiter), tokens=tokens,
                       final=reason == "stop", truncated=reason == "length")
                for text, tokens, reason, _ in outs]

    def _next_seed(self) -> int | None:
        self._calls += 1
        if self.params.seed is None:
            return None
        return (self.params.seed * 1_000_003 + self._calls) % 2**31

    async def _generate(self, prompt: str, params: SamplingParams
                        ) -> list[tuple[str, int, str | None, str | int | None]]:
        """(text, tokens, finish_reason, stop_reason) per sample, in index order."""
        self.stats.engine_calls += 1
        texts = [""] * params.n
        tokens = [0] * params.n
        reasons: list[str | None] = [None] * params.n
        stops: list[str | int | None] = [None] * params.n
        with self.engine_work():
            ids = self.engine.encode(prompt, add_special_tokens=self.problem.add_special_tokens)
            outputs = self.engine.generate(ids, params, f"search-{uuid.uuid4().hex}",
                                           self.problem.adapter)
            try:
                async for out in outputs:
                    for choice in out.choices:
                        texts[choice.index] += choice.text
                        tokens[choice.index] += len(choice.token_ids)
                        self.stats.generated_tokens += len(choice.token_ids)
                        if choice.finish_reason is not None:
                            reasons[choice.index] = choice.finish_reason
                            stops[choice.index] = choice.stop_reason
            finally:
                await outputs.aclose()
        return list(zip(texts, tokens, reasons, stops))

    @contextmanager
    def engine_work(self) -> Iterator[None]:
        """Counts the wall time inside (overlapping spans once) as engine-busy: generation
        here, and the scorer's batches (the PRM and ORM are requests to the same engine)."""
        if self._in_flight == 0:
            self._busy_since = time.monotonic()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.stats.busy_s += time.monotonic() - self._busy_since


def split_steps(text: str, delimiter: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(delimiter) if s.strip())
