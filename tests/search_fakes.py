"""A scripted step-level engine and verifier for search tests, without vLLM.

`StepEngine` continues a prompt as a scripted tree of steps: `script[steps_so_far]` lists the
candidate next steps; sample i of a request takes candidate i (mod their number), greedy takes
the first (with `fresh`, sampled requests for the same steps go on through the candidates
where the last one stopped, as sampling finds new steps over time). A request with a stop
string returns one step (stop_reason = the delimiter), or the step and end of sequence when it
is an "Answer" step; one without returns the whole rest of the path, greedily. One token per
character; as vLLM reports them, a choice's ids hold the delimiter it stopped at (its text does
not) and the EOS id that ended it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.protocol import Choice, GenerationOutput, SamplingParams, TokenLogprob
from engine.scope import current_scope
from search.traces import trace_seed
from tests.fakes import EOS_ID, FakeEngine
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
                ids = [ord(c) for c in text] + [ord(c) for c in stop or ""]
                if stop is None:
                    ids.append(EOS_ID)
                if len(ids) > params.max_tokens:
                    ids, reason, stop = ids[: params.max_tokens], "length", None
                    text = self.decode(ids)
                choices.append(Choice(i, text, ids, None, reason, stop))
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
    items: list[list[StepItem]] = field(default_factory=list)  # every batch it scored

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        self.batches.append(len(items))
        self.items.append(list(items))
        return [self.table.get(item.step, self.other) for item in items]


@dataclass
class TokenEngine(FakeEngine):
    """A scripted model that writes whole solutions as multi-character tokens, stopping as vLLM
    does: it emits one token at a time, and after the token that completes a stop string it
    stops, its text cut before the stop string, its ids keeping the token; at the end of a
    solution it emits an EOS id (`second_eos` ones the generation config's second EOS, reported
    as a stop_reason id).

    `solutions` are texts, tokenized once by greedy longest match over `vocab` (so ".\\n\\n" and
    "\\n\\n" are single tokens). A request continues the solutions whose ids start with the ids
    written after the prompt; sample i takes the i-th of them (greedy: the first). Ids that no
    solution starts with were never written by this model: the request fails, so a caller that
    re-tokenizes text is caught."""

    prompt: str = ""
    vocab: tuple[str, ...] = ()
    solutions: tuple[str, ...] = ()
    second_eos: frozenset[int] = frozenset()  # indices of solutions ended by the second EOS
    max_model_len: int = 4096
    calls: list[tuple[list[int], SamplingParams]] = field(default_factory=list)
    outputs: list[list[int]] = field(default_factory=list)  # every choice's generated ids

    EOS, EOT = 0, 1  # ids of "<eos>" (the tokenizer's) and "<eot>" (the second EOS)

    def __post_init__(self) -> None:
        self.tokens = ("<eos>", "<eot>", *sorted(set(self.vocab) | set(map(chr, range(9, 127))),
                                                 key=lambda t: (-len(t), t)))
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.written = [self.encode(s) for s in self.solutions]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids, at = [], 0
        while at < len(text):
            token = next(t for t in self.tokens[2:] if text.startswith(t, at))
            ids.append(self.ids[token])
            at += len(token)
        return ids

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self.tokens[i] for i in token_ids if i > self.EOT)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages)

    async def generate(self, prompt, params: SamplingParams, request_id: str, adapter=None):
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        self.calls.append((ids, params))
        prompt_len = len(self.encode(self.prompt))
        written = ids[prompt_len:]
        matching = [i for i, s in enumerate(self.written) if s[: len(written)] == written]
        if ids[:prompt_len] != self.encode(self.prompt) or not matching:
            raise AssertionError(f"the model never wrote {self.decode(written)!r} as {written}")
        choices = []
        for k in range(params.n):
            index = matching[0 if params.temperature == 0 else k % len(matching)]
            end = self.EOT if index in self.second_eos else self.EOS
            rest = self.written[index][len(written):] + [end]
            choices.append(self._with_logprobs(self._continue(k, rest, params), params))
            self.outputs.append(list(choices[-1].token_ids))
        yield GenerationOutput(request_id, ids, choices, True)

    def _with_logprobs(self, choice: Choice, params: SamplingParams) -> Choice:
        """Top-k logprobs per token when asked for: the token at -0.1 and one alternative whose
        logprob depends on the id (`confidence(id)` is each token's confidence at k >= 2)."""
        if params.logprobs is None:
            return choice
        return dataclasses.replace(choice, logprobs=[
            TokenLogprob(token=self.tokens[t], logprob=-0.1,
                         top={self.tokens[t]: -0.1, "?": -float(1 + t % 7)})
            for t in choice.token_ids])

    @staticmethod
    def confidence(token_id: int) -> float:
        return (0.1 + 1 + token_id % 7) / 2

    def _continue(self, index: int, rest: list[int], params: SamplingParams) -> Choice:
        out: list[int] = []
        text = ""
        for token in rest:
            out.append(token)
            if token in (self.EOS, self.EOT):
                return Choice(index, text, out, None, "stop",
                              None if token == self.EOS else token)
            before, text = len(text), text + self.tokens[token]
            for stop in params.stop:
                at = text.find(stop, max(before - len(stop) + 1, 0))
                if at >= 0:
                    return Choice(index, text[:at], out, None, "stop", stop)
            if len(out) == params.max_tokens:
                return Choice(index, text, out, None, "length", None)
        raise AssertionError("a solution without an end")


@dataclass
class TraceEngine(FakeEngine):
    """A scripted model that writes whole solutions with a scripted confidence per token: the
    request seeded as trace i (`search.traces.trace_seed(seed, i)`) writes `traces[i]`, a text
    and its tokens' confidences (one value for all, or one per character; the last one repeats),
    one character per delta (all at once with final_only), ending with end of sequence. Each
    position's top-k logprobs are all -confidence, so its token confidence is exactly that.
    `written` counts the tokens each request was given before it ended or was closed."""

    traces: list[tuple[str, float | list[float]]] = field(default_factory=list)
    seed: int = 0
    max_model_len: int = 4096
    written: dict[str, int] = field(default_factory=dict)  # request id -> tokens yielded

    def trace_for(self, seed: int | None) -> tuple[str, list[float]]:
        index = next(i for i in range(len(self.traces)) if trace_seed(self.seed, i) == seed)
        text, confidence = self.traces[index]
        levels = confidence if isinstance(confidence, list) else [confidence]
        return text, [levels[min(i, len(levels) - 1)] for i in range(len(text))]

    async def generate(self, prompt, params: SamplingParams, request_id: str, adapter=None):
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        self.requests.append((request_id, ids, params))
        self.running.add(request_id)
        self.written[request_id] = 0
        text, levels = self.trace_for(params.seed)
        text, levels = text[: params.max_tokens], levels[: params.max_tokens]
        finished = False
        try:
            chunks = ([range(len(text))] if params.final_only
                      else [range(i, i + 1) for i in range(len(text))])
            for chunk in chunks:
                await asyncio.sleep(0)  # other traces run meanwhile, as in an engine's batch
                last = chunk[-1] == len(text) - 1
                reason = None if not last else "length" if len(text) == params.max_tokens \
                    else "stop"
                logprobs = None if params.logprobs is None else [
                    TokenLogprob(text[i], -levels[i],
                                 {f"t{j}": -levels[i] for j in range(params.logprobs)})
                    for i in chunk]
                self.written[request_id] += len(chunk)
                finished = last
                yield GenerationOutput(request_id, ids, [Choice(
                    0, "".join(text[i] for i in chunk), [ord(text[i]) for i in chunk],
                    logprobs, reason)], last)
        finally:
            self.running.discard(request_id)
            if not finished:
                self.aborted.append(request_id)


@dataclass
class ArithmeticOracle(FakeEngine):
    """A character-level model that knows the demo arithmetic perfectly and reads only its
    prompt, for bounded-context tests: the prompt is `Compute: E` and a newline, then what it
    wrote so far (or, in a chunk that carries the last tokens, the tail of it). It continues
    the worked solution of E (`training.tasks.arithmetic`) from where the text after the
    question ends, which must be its start or a piece of it found exactly once (else it fails:
    the test's carry-over was not what it claims). `max_model_len` is enforced: a request
    whose prompt and max_tokens pass it fails, as vLLM refuses it."""

    max_model_len: int = 512
    calls: list[tuple[str, SamplingParams]] = field(default_factory=list)

    async def generate(self, prompt, params: SamplingParams, request_id: str, adapter=None):
        from training.tasks import arithmetic

        text = prompt if isinstance(prompt, str) else self.decode(prompt)
        self.calls.append((text, params))
        if len(text) + params.max_tokens > self.max_model_len:
            raise AssertionError(f"{len(text)} + {params.max_tokens} passes the window")
        question, _, written = text.partition("\n")
        solution = arithmetic.solution(arithmetic.from_prompt(question))
        # a state's chunk carries the start of its solution; a last-m chunk a piece of it
        at = 0 if solution.startswith(written) else solution.find(written)
        if at < 0 or (at > 0 and solution.count(written) != 1):
            raise AssertionError(f"{written!r} is not one piece of {solution!r}")
        rest = solution[at + len(written):]
        choices = []
        for k in range(params.n):
            out = ""
            for ch in rest:
                out += ch
                if out.endswith("\n") and "\n" in params.stop:
                    choices.append(Choice(k, out[:-1], self.encode(out), None, "stop", "\n"))
                    break
                if len(out) == params.max_tokens:
                    choices.append(Choice(k, out, self.encode(out), None, "length", None))
                    break
            else:  # the solution's end, then EOS
                choices.append(Choice(k, out, [*self.encode(out), EOS_ID], None, "stop", None))
        yield GenerationOutput(request_id, self.encode(text), choices, True)
