"""A scripted step-level engine and verifier for search tests, without vLLM.

`StepEngine` continues a prompt as a scripted tree of steps: `script[steps_so_far]` lists the
candidate next steps; sample i of a request takes candidate i (mod their number), greedy takes
the first (with `fresh`, sampled requests for the same steps go on through the candidates
where the last one stopped, as sampling finds new steps over time). A request with a stop
string returns one step (stop_reason = the delimiter), or the step and end of sequence when it
is an "Answer" step; one without returns the whole rest of the path, greedily. One token per
character.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.protocol import Choice, GenerationOutput, SamplingParams
from engine.scope import current_scope
from tests.fakes import FakeEngine
from verifiers.protocol import ScoringContext, StepItem


@dataclass
class StepEngine(FakeEngine):
    """`FakeEngine` (adapters, health, chat rendering) with scripted step-level generation."""

    prompt: str = ""
    script: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    max_model_len: int = 4096
    delimiter: str = "\n"
    delay_s: float = 0.0  # per request, so that cancellation can land mid-search
    calls: list[tuple[str, SamplingParams]] = field(default_factory=list)
    fresh: bool = False
    _drawn: dict[tuple[str, ...], int] = field(default_factory=dict)  # samples drawn per state

    def steps_of(self, prompt: str) -> tuple[str, ...]:
        assert prompt.startswith(self.prompt), prompt
        rest = prompt[len(self.prompt):]
        return tuple(s for s in rest.split(self.delimiter) if s)

    def candidates(self, steps: tuple[str, ...]) -> list[str]:
        return self.script.get(steps, ["Answer: ?"])

    def continuation(self, steps: tuple[str, ...], index: int, params: SamplingParams
                     ) -> tuple[str, str | None]:
        """(text, stop_reason) of sample `index`."""
        options = self.candidates(steps)
        offset = self._drawn.get(steps, 0) if self.fresh else 0
        step = options[0] if params.temperature == 0 else options[(offset + index) % len(options)]
        if params.stop:
            final = step.startswith("Answer")
            return step, None if final else self.delimiter
        path = [step]
        while not path[-1].startswith("Answer") and len(path) < 32:
            path.append(self.candidates(steps + tuple(path))[0])
        return self.delimiter.join(path), None

    async def generate(self, prompt, params: SamplingParams, request_id: str, adapter=None):
        prompt = prompt if isinstance(prompt, str) else "".join(map(chr, prompt))
        self.calls.append((prompt, params))
        self.adapter_of[request_id] = adapter
        self.scopes[request_id] = current_scope()
        self.running.add(request_id)
        finished = False
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            steps = self.steps_of(prompt)
            choices = []
            for i in range(params.n):
                text, stop = self.continuation(steps, i, params)
                reason = "stop"
                if len(text) > params.max_tokens:
                    text, reason, stop = text[: params.max_tokens], "length", None
                choices.append(Choice(i, text, [ord(c) for c in text], None, reason, stop))
            if params.temperature > 0:
                self._drawn[steps] = self._drawn.get(steps, 0) + params.n
            finished = True
            yield GenerationOutput(request_id, [ord(c) for c in prompt], choices, True)
        finally:
            self.running.discard(request_id)
            if not finished:
                self.aborted.append(request_id)


@dataclass
class TableVerifier:
    """Scores a step by a table (default `other`); counts its batches."""

    table: dict[str, float]
    other: float = 0.5
    name: str = "table"
    batches: list[int] = field(default_factory=list)

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        self.batches.append(len(items))
        return [self.table.get(item.step, self.other) for item in items]
