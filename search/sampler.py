"""Engine calls of a search: sample the next step of a path (siblings in one request, n = k) or
finish a path. Paths are token ids: every request's prompt is the prompt's ids followed by the
ids the engine generated along the path, so the model reads exactly what it wrote, siblings and
descendants share a prefix that vLLM's prefix cache reuses whole, and an answer decodes to the
very text generated.

A step sample ends at the step delimiter (`search.steps`); one that stopped with only blank space
so far (a blank line between steps), or at a trigger where a regex delimiter does not match yet,
goes on in another request from where it stopped. A step is at most `max_step_tokens`; a longer
one is cut there and the next step continues it. The solution ends at any of the model's EOS
ids (vLLM stops on every EOS of generation_config.json) or at one of the request's stop strings.

Every request asks for the top-k logprobs of what it generates (`confidence_top_k`): each
token's confidence (search.confidence) is kept with its step, so that an answer's confidence
reads its whole path.

Cancelling the search (client gone) cancels the tasks iterating these requests; closing an
engine generator aborts its request, so nothing keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.protocol import Engine, SamplingParams
from search.budget import Budget
from search.chunking import Chunker
from search.confidence import token_confidences
from search.params import SearchParams
from search.problem import SearchProblem, SearchStats
from search.steps import Step, split_completion, trim

# Requests one step may take when it stops before it has ended (blank lines, a regex delimiter
# not matched yet at a trigger): a model that writes blank lines without end, or lines that
# never match, has its step cut there, as at max_step_tokens.
MAX_CONTINUATIONS = 16


@dataclass(frozen=True)
class Sample:
    steps: tuple[Step, ...]  # one step when sampling a step; the rest of the path when finishing
    tokens: int  # generated, an ending EOS included
    final: bool  # the model ended the solution (EOS, or a stop string of the request)
    truncated: bool  # the answer's room (max_tokens) or the token budget ran out
    stop: str | None = None  # the request's stop string that ended it (not part of the answer)


@dataclass
class _Output:
    """One sample of one engine request."""
    ids: list[int]  # generated ids (an ending EOS among them: special, it decodes to nothing)
    finish: str | None
    stop: str | int | None
    confidences: list[float] = field(default_factory=list)  # one per id, when read


class Sampler:
    def __init__(self, engine: Engine, problem: SearchProblem, params: SearchParams,
                 stats: SearchStats, budget: Budget) -> None:
        self.engine = engine
        self.problem = problem
        self.params = params
        self.stats = stats
        self.budget = budget
        self.prompt_ids = tuple(problem.prompt_token_ids if problem.prompt_token_ids is not None
                                else engine.encode(problem.prompt,
                                                   add_special_tokens=problem.add_special_tokens))
        self.chunker = (None if problem.chunking is None else
                        Chunker(problem.chunking, problem.question, self.prompt_ids,
                                engine.decode))
        self._calls = 0  # numbers each request, for its seed: same calls, same samples
        self._held = 0  # KV tokens the live requests hold: prompt + generated per sample
        self._in_flight = 0
        self._busy_since = 0.0

    def answer_room(self, path_ids: Sequence[int]) -> int:
        """Tokens the answer may still take after `path_ids`. The request's max_tokens bounds the
        returned answer, every step of it, as it bounds a greedy one; this also keeps a long
        path inside the model's context (max_tokens defaults to the room the prompt leaves).
        A chunked path has none left once its last chunk is full."""
        if self.chunker is not None and self.chunker.view(path_ids) is None:
            return 0
        return self.params.max_tokens - len(path_ids)

    async def sample_steps(self, path_ids: tuple[int, ...], k: int) -> list[Sample]:
        """k candidate next steps after `path_ids`, in one engine request (a sample that must go
        on after a blank line goes on in a request of its own)."""
        limit = min(self.params.max_step_tokens, max(self.answer_room(path_ids), 1))
        outs = await self._generate(path_ids, self._step_params(limit, k))
        return list(await asyncio.gather(*(self._step(path_ids, out, limit) for out in outs)))

    def _step_params(self, max_tokens: int, n: int) -> SamplingParams:
        return SamplingParams(
            max_tokens=max_tokens, temperature=self.params.temperature, top_p=self.params.top_p,
            n=n, stop=self.problem.delimiter.stops + self.problem.stop + self._thinking_end,
            seed=self._next_seed(), final_only=True, logprobs=self._top_k)

    @property
    def _top_k(self) -> int | None:
        return self.params.confidence_top_k or None

    @property
    def _thinking_end(self) -> tuple[str, ...]:
        end = self.problem.thinking_end
        return () if end is None else (end,)

    async def _step(self, path_ids: tuple[int, ...], out: _Output, limit: int) -> Sample:
        """One step from a sample: continued while it holds only blank space (or a regex
        delimiter has not matched), until the step ends, the solution ends, or `limit`."""
        ids, confs = list(out.ids), list(out.confidences)
        delimiter = self.problem.delimiter
        for continued in range(MAX_CONTINUATIONS + 1):
            text = self.engine.decode(ids)
            final, stop = self._ending(out)
            if out.finish == "stop" and out.stop in self._thinking_end:
                return await self._answer(path_ids, ids, confs)
            if final or out.finish != "stop" or delimiter.match(text) is not None \
                    or len(ids) >= limit or continued == MAX_CONTINUATIONS:
                break
            (out,) = await self._generate(path_ids + tuple(ids),
                                          self._step_params(limit - len(ids), 1))
            ids += out.ids
            confs += out.confidences
        view = delimiter.view(before_stop(text, stop))
        return Sample(steps=(Step(view, tuple(ids), _aligned(confs, ids)),) if view else (),
                      tokens=len(ids),
                      final=final, truncated=False, stop=stop)

    async def _answer(self, path_ids: tuple[int, ...], ids: list[int],
                      confs: list[float]) -> Sample:
        """The step that ends the thinking, with the answer after it, written greedily in one
        request: a search branches over the thinking, not over the answer it leads to."""
        room = self.answer_room(path_ids + tuple(ids))
        if room <= 0:  # the thinking took all the room: the path ends there, cut
            return Sample(steps=(Step(trim(self.engine.decode(ids)), tuple(ids),
                                      _aligned(confs, ids)),),
                          tokens=len(ids), final=False, truncated=True)
        (out,) = await self._generate(path_ids + tuple(ids), SamplingParams(
            max_tokens=room, temperature=0.0, stop=self.problem.stop, final_only=True,
            logprobs=self._top_k))
        ids, confs = ids + out.ids, confs + out.confidences
        final, stop = self._ending(out)
        view = trim(before_stop(self.engine.decode(ids), stop))
        return Sample(steps=(Step(view, tuple(ids), _aligned(confs, ids)),), tokens=len(ids),
                      final=final, truncated=out.finish == "length", stop=stop)

    def _ending(self, out: _Output) -> tuple[bool, str | None]:
        """(the solution ended, the request's stop string that ended it)."""
        if out.finish != "stop":
            return False, None
        if out.stop is None or isinstance(out.stop, int):  # an EOS (any of the model's)
            return True, None
        if out.stop in self.problem.stop:
            return True, out.stop
        return False, None

    async def finish(self, path_ids: tuple[int, ...], n: int = 1,
                     temperature: float = 0.0) -> list[Sample]:
        """n completions of the path to the end (greedy by default), split into steps."""
        max_tokens = max(self.answer_room(path_ids), 1)
        left = self.budget.tokens_left()
        if left is not None:
            max_tokens = max(min(max_tokens, left // max(n, 1)), 1)
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature,
                                top_p=self.params.top_p if temperature > 0 else 1.0, n=n,
                                stop=self.problem.stop,
                                seed=self._next_seed() if temperature > 0 else None,
                                final_only=True, logprobs=self._top_k)
        return [self.completion(out.ids, out.finish, out.stop, out.confidences)
                for out in await self._generate(path_ids, params)]

    def completion(self, ids: Sequence[int], finish: str | None, stop_reason: str | int | None,
                   confidences: Sequence[float] = ()) -> Sample:
        """A completion (its generated `ids`, the engine's finish and stop reasons, the tokens'
        confidences) split into steps."""
        final, stop = self._ending(_Output(list(ids), finish, stop_reason))
        steps = split_completion(ids, self.problem.delimiter, self.engine.decode,
                                 self.problem.thinking_end, confidences)
        if stop is not None and steps:  # the stop string is no part of the last step
            last = steps.pop()
            text = before_stop(self.engine.decode(last.token_ids), stop)
            view = self.problem.delimiter.view(text)
            steps += [Step(view, last.token_ids, last.confidences)] if view else []
        return Sample(steps=tuple(steps), tokens=len(ids), final=final,
                      truncated=finish == "length", stop=stop)

    def _next_seed(self) -> int | None:
        self._calls += 1
        if self.params.seed is None:
            return None
        return (self.params.seed * 1_000_003 + self._calls) % 2**31

    async def _generate(self, path_ids: Sequence[int], params: SamplingParams) -> list[_Output]:
        """The samples of one request for the prompt followed by `path_ids`, in index order.
        A chunked path (search.chunking) reads its chunk's view instead, and a sample the
        chunk's end cut goes on in the next chunk (one request each) until it stops, reaches
        `params.max_tokens`, or has no chunk left: chunks are invisible to the callers."""
        outs = await self._request(path_ids, params)
        if self.chunker is not None:
            await asyncio.gather(*(self._go_on(path_ids, params, k, out)
                                   for k, out in enumerate(outs)))
        return outs

    async def _go_on(self, path_ids: Sequence[int], params: SamplingParams, k: int,
                     out: _Output) -> None:
        """Sample k of a chunked request, continued in the chunks after the one that cut it
        (the samples side by side, each seeded by its index and length: the same samples
        whatever order the engine finishes them in)."""
        while out.finish == "length" and len(out.ids) < params.max_tokens \
                and self.chunker.view([*path_ids, *out.ids]) is not None:  # type: ignore[union-attr]
            seed = (None if params.seed is None
                    else (params.seed * 1_000_003 + 7_919 * (k + 1) + len(out.ids)) % 2**31)
            (more,) = await self._request([*path_ids, *out.ids], dataclasses.replace(
                params, n=1, max_tokens=params.max_tokens - len(out.ids), seed=seed))
            if not more.ids:  # the window has no room: the path ends here, cut
                return
            out.ids += more.ids
            out.confidences += more.confidences
            out.finish, out.stop = more.finish, more.stop

    async def _request(self, path_ids: Sequence[int], params: SamplingParams) -> list[_Output]:
        """One engine request; a chunked path's reads its chunk and stops at the chunk's end
        (finish "length") or the model's window, whichever is first."""
        prompt = [*self.prompt_ids, *path_ids]
        if self.chunker is not None:
            view = self.chunker.view(path_ids)
            if view is None:  # no chunk left: nothing generated, as at max_tokens
                return [_Output([], "length", None) for _ in range(params.n)]
            prompt = view.prompt(path_ids)
            room = min(view.room(path_ids), self.engine.max_model_len - len(prompt))
            if room <= 0:
                return [_Output([], "length", None) for _ in range(params.n)]
            params = dataclasses.replace(params, max_tokens=max(min(params.max_tokens, room), 1))
        self.stats.engine_calls += 1
        outs = [_Output([], None, None) for _ in range(params.n)]
        held = len(prompt) * params.n
        self._hold(held)
        with self.engine_work():
            outputs = self.engine.generate(prompt, params,
                                           f"search-{uuid.uuid4().hex}", self.problem.adapter)
            try:
                async for output in outputs:
                    for choice in output.choices:
                        out = outs[choice.index]
                        out.ids += choice.token_ids
                        if params.logprobs is not None and choice.logprobs is not None:
                            out.confidences += token_confidences(choice.logprobs,
                                                                 params.logprobs)
                        self.stats.generated_tokens += len(choice.token_ids)
                        held += len(choice.token_ids)
                        self._hold(len(choice.token_ids))
                        if choice.finish_reason is not None:
                            out.finish, out.stop = choice.finish_reason, choice.stop_reason
            finally:
                await outputs.aclose()
                self._hold(-held)
        self.stats.max_context_tokens = max(self.stats.max_context_tokens,
                                            len(prompt) + max(len(o.ids) for o in outs))
        return outs

    def _hold(self, tokens: int) -> None:
        """What the live requests hold, counted as prompt + generated per sample (an upper
        bound: vLLM's prefix cache shares siblings' prompt blocks); its peak in the stats."""
        self._held += tokens
        self.stats.peak_kv_tokens = max(self.stats.peak_kv_tokens, self._held)

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


def _aligned(confidences: list[float], ids: list[int]) -> tuple[float, ...]:
    """The confidences when there is one per id (an engine that returned no logprobs for some
    part: none, rather than confidences read against the wrong tokens)."""
    return tuple(confidences) if len(confidences) == len(ids) else ()


def before_stop(text: str, stop: str | None) -> str:
    """`text` up to the request's stop string that ended it (all of it when none did)."""
    return text if stop is None or stop not in text else text[: text.rfind(stop)]
