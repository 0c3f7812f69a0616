"""Whole solutions ("traces") sampled one engine request each, with every token's confidence
(search.confidence) read from the top-k logprobs the request asks for. A trace may be watched
as it streams: the moment the watcher says stop, the request is closed, which aborts it in the
engine (vLLM's abort on close; a remote engine closes its HTTP stream and the replica aborts),
so the tokens it would still have written are never generated.

One request per trace, each seeded by its index: the same trace comes out whether it is watched
or not, so a watched run is an unwatched one with the low-confidence traces cut short.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.protocol import SamplingParams
from search.confidence import token_confidences
from search.sampler import Sample, Sampler, before_stop
from search.steps import Step, split_completion

# Called with each new token's confidence; True stops the trace there.
Watch = Callable[[float], bool]


@dataclass
class Trace:
    index: int
    ids: list[int] = field(default_factory=list)  # generated (an ending EOS among them)
    confidences: list[float] = field(default_factory=list)  # one per generated token
    finish: str | None = None  # the engine's finish reason; None when stopped by the watcher
    stop: str | int | None = None  # the engine's stop reason
    aborted: bool = False  # stopped by the watcher before the engine finished it


def trace_seed(seed: int | None, index: int) -> int | None:
    """Trace `index`'s seed: distinct per trace, the same in every mode."""
    return None if seed is None else (seed * 1_000_003 + 7_919 * (index + 1)) % 2**31


async def sample_trace(sampler: Sampler, index: int, max_tokens: int, top_k: int,
                       watch: Watch | None = None) -> Trace:
    """Trace `index` from the prompt, at the search's temperature, its tokens' confidences
    read from their top `top_k` logprobs. With `watch` it streams (one delta per token or
    few) and stops as soon as `watch` says so; without, the engine returns it whole."""
    params = sampler.params
    request = SamplingParams(max_tokens=max_tokens, temperature=params.temperature,
                             top_p=params.top_p, stop=sampler.problem.stop,
                             seed=trace_seed(params.seed, index), logprobs=top_k,
                             final_only=watch is None)
    trace = Trace(index)
    sampler.stats.engine_calls += 1
    with sampler.engine_work():
        outputs = sampler.engine.generate(list(sampler.prompt_ids), request,
                                          f"trace-{uuid.uuid4().hex}", sampler.problem.adapter)
        try:
            async for output in outputs:
                for choice in output.choices:
                    trace.ids += choice.token_ids
                    sampler.stats.generated_tokens += len(choice.token_ids)
                    confidences = token_confidences(choice.logprobs or (), top_k)
                    trace.confidences += confidences
                    if choice.finish_reason is not None:
                        trace.finish, trace.stop = choice.finish_reason, choice.stop_reason
                    # every token is judged, a delta of several included
                    if watch is not None and trace.finish is None \
                            and any([watch(c) for c in confidences]):
                        trace.aborted = True
                        return trace
        finally:
            await outputs.aclose()  # before the engine finished: aborts the request
    return trace


def as_sample(sampler: Sampler, trace: Trace) -> Sample:
    """A finished trace as a completion, split into steps as `Sampler.finish` splits one."""
    problem, decode = sampler.problem, sampler.engine.decode
    final = trace.finish == "stop" and (trace.stop is None or isinstance(trace.stop, int)
                                        or trace.stop in problem.stop)
    stop = trace.stop if final and isinstance(trace.stop, str) else None
    steps = split_completion(trace.ids, problem.delimiter, decode, problem.thinking_end)
    if stop is not None and steps:  # the stop string is no part of the last step
        last = steps.pop()
        view = problem.delimiter.view(before_stop(decode(last.token_ids), stop))
        steps += [Step(view, last.token_ids)] if view else []
    return Sample(steps=tuple(steps), tokens=len(trace.ids), final=final,
                  truncated=trace.finish == "length", stop=stop)
