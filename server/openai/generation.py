"""Turns a validated OpenAI request into an engine request and runs it; shared by chat and
completions, which differ only in how the prompt is built and the response is shaped.

Every single pass asks the engine for the top-k logprobs its answer's confidence reads
(`confidence_top_k`, or the client's own k when larger): each choice's token confidences are
kept on the request (`EngineRequest.confidences`), and the logprobs go on to the response only
as the client asked for them (none, or its own k)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from search.confidence import token_confidences

from adapters.registry import AdapterRegistry
from engine.protocol import (
    Choice,
    Engine,
    GenerationOutput,
    SamplingParams,
    TokenLogprob,
)
from server.errors import bad_request, model_not_found
from server.metrics import GENERATED_TOKENS
from server.openai.protocol import SamplingRequest
from server.openai.sampling_defaults import SamplingDefaults


# A single pass is scheduled ahead of searches' engine calls (the default, 0) when the engine
# has more requests than its batch takes: the admission lanes keep searches from holding back
# single passes at the door, this inside the engine.
SINGLE_PASS_PRIORITY = -1
# A chunked request's (reasoning.context) answer may be this many windows long, at most (and
# max_tokens defaults to it): the server's --max-tokens-limit caps it where set.
CHUNKED_MAX_WINDOWS = 8


@dataclass(frozen=True)
class Limits:
    max_n: int
    max_logprobs: int
    max_tokens: int | None = None  # None: the context bounds it
    max_stop: int = 16
    max_messages: int = 256
    max_prompts: int = 64
    batch_concurrency: int = 16

    @classmethod
    def from_settings(cls, s) -> Limits:
        return cls(s.max_n, s.max_logprobs, s.max_tokens_limit, s.max_stop, s.max_messages,
                   s.max_prompts, s.batch_concurrency)


@dataclass(frozen=True)
class EngineRequest:
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    model: str  # the base model's name or an adapter's
    client_logprobs: int | None = None  # the top-k the client asked for (params': at least it)
    # choice index -> its tokens' confidences (search.confidence), as the engine's outputs come
    confidences: dict[int, list[float]] = field(default_factory=dict)


@dataclass
class ChoiceResult:
    text: str = ""
    token_count: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    filter_reason: str | None = None  # why a safety policy withheld it (finish content_filter)


@dataclass
class Result:
    prompt_tokens: int
    choices: list[ChoiceResult]
    prompt_logprobs: Sequence[dict[str, float] | None] | None = None
    prompt_token_logprobs: Sequence[TokenLogprob | None] | None = None
    confidences: dict[int, list[float]] = field(default_factory=dict)  # per choice, per token

    @property
    def completion_tokens(self) -> int:
        return sum(choice.token_count for choice in self.choices)


class GenerationService:
    def __init__(self, engine: Engine, limits: Limits, adapters: AdapterRegistry,
                 defaults: SamplingDefaults = SamplingDefaults(),
                 confidence_top_k: int = 5) -> None:
        self.engine = engine
        self.limits = limits
        self.adapters = adapters
        self.defaults = defaults
        self.confidence_top_k = confidence_top_k

    def check_model(self, model: str) -> None:
        if not self.adapters.is_known(model):
            raise model_not_found(model, [self.engine.model_name, *self.adapters.names()])

    def build(
        self,
        request: SamplingRequest,
        prompt_token_ids: list[int],
        *,
        prompt_param: str,
        max_tokens: int | None,
        max_tokens_param: str,
        logprobs: int | None,
        logprobs_param: str,
        id_prefix: str,
        prompt_logprobs: int | None = None,
        name_prompt_tokens: bool = False,
    ) -> EngineRequest:
        """Checks the request against the model and the server's limits; 400 names the field."""
        context = self.engine.max_model_len
        prompt_len = len(prompt_token_ids)
        if prompt_len == 0:
            raise bad_request("the prompt is empty", param=prompt_param)
        if prompt_len >= context:
            raise bad_request(
                f"This model's maximum context length is {context} tokens, but the prompt has "
                f"{prompt_len} tokens; shorten the prompt.", param=prompt_param)
        room = context - prompt_len
        if request.reasoning is not None and request.reasoning.context is not None:
            # chunked (search/chunking.py): the answer may outgrow the window, chunk by chunk
            room = max(room, CHUNKED_MAX_WINDOWS * context)
        cap = self.limits.max_tokens
        if max_tokens is not None and cap is not None and max_tokens > cap:
            raise bad_request(f"{max_tokens_param}={max_tokens} is above this server's limit of "
                              f"{cap}", param=max_tokens_param)
        if max_tokens is None and cap is not None:
            max_tokens = min(room, cap)
        if max_tokens is not None and max_tokens > room:
            raise bad_request(
                f"{max_tokens_param}={max_tokens} is too large: the prompt has {prompt_len} tokens "
                f"and the context length is {context}, so at most {room} can be generated.",
                param=max_tokens_param)
        if len(request.stop_strings()) > self.limits.max_stop:
            raise bad_request(f"{len(request.stop_strings())} stop strings are more than this "
                              f"server's limit of {self.limits.max_stop}", param="stop")
        if request.n > self.limits.max_n:
            raise bad_request(f"n={request.n} is above this server's limit of "
                              f"{self.limits.max_n}", param="n")
        temperature = (self.defaults.temperature if request.temperature is None
                       else request.temperature)
        if request.n > 1 and temperature == 0:
            raise bad_request("n > 1 needs temperature > 0: greedy sampling would return the same "
                              "text n times", param="n")
        for value, param in ((logprobs, logprobs_param), (prompt_logprobs, "prompt_logprobs")):
            if value is not None and value > self.limits.max_logprobs:
                raise bad_request(f"{param}={value} is above this server's limit of "
                                  f"{self.limits.max_logprobs}", param=param)
        params = SamplingParams(
            max_tokens=room if max_tokens is None else max_tokens,
            temperature=temperature,
            top_p=self.defaults.top_p if request.top_p is None else request.top_p,
            n=request.n,
            stop=request.stop_strings(),
            seed=request.seed,
            logprobs=(max(logprobs or 0, self.confidence_top_k) if self.confidence_top_k
                      else logprobs),
            prompt_logprobs=prompt_logprobs,
            ignore_eos=request.ignore_eos,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            logit_bias=request.token_bias(),
            name_prompt_tokens=name_prompt_tokens,
            priority=SINGLE_PASS_PRIORITY,
        )
        return EngineRequest(f"{id_prefix}-{uuid.uuid4().hex}", prompt_token_ids, params,
                             model=request.model, client_logprobs=logprobs)

    @staticmethod
    def single_pass(request: SamplingRequest, job: EngineRequest) -> EngineRequest:
        """`job` as the single pass the server decided on (greedy: by name, by a low effort, or
        by the router): a client that left `temperature` unset gets greedy decoding, as the
        strategy's name says; an explicit temperature keeps its meaning, and a request for n
        samples still samples."""
        if request.temperature is not None or job.params.n > 1:
            return job
        return dataclasses.replace(job, params=dataclasses.replace(job.params, temperature=0.0))

    async def stream(self, request: EngineRequest) -> AsyncGenerator[GenerationOutput, None]:
        """The engine's deltas. Closing this iterator (client gone) aborts the engine request.
        An adapter stays resident (not evicted or unloaded) until the request ends."""
        async with self.adapters.acquire(request.model) as adapter:
            outputs = self.engine.generate(request.prompt_token_ids, request.params,
                                           request.request_id, adapter)
            try:
                async for out in outputs:
                    GENERATED_TOKENS.inc(sum(len(choice.token_ids) for choice in out.choices))
                    yield self._read_confidences(request, out)
            finally:
                await outputs.aclose()

    def _read_confidences(self, request: EngineRequest, out: GenerationOutput
                          ) -> GenerationOutput:
        """`out` with its tokens' confidences kept on the request, and its logprobs as the
        client asked for them."""
        k = request.client_logprobs
        choices = []
        for choice in out.choices:
            if choice.logprobs is not None:
                request.confidences.setdefault(choice.index, []).extend(
                    token_confidences(choice.logprobs, self.confidence_top_k))
            logprobs = None if k is None or choice.logprobs is None else [
                p if len(p.top) <= k else dataclasses.replace(p, top=dict(sorted(
                    p.top.items(), key=lambda item: item[1], reverse=True)[:k]))
                for p in choice.logprobs]
            choices.append(dataclasses.replace(choice, logprobs=logprobs))
        return dataclasses.replace(out, choices=choices)

    async def start(self, request: EngineRequest) -> AsyncGenerator[GenerationOutput, None]:
        """`stream`, once the engine has answered: a refusal (or a dead engine) still gets its
        status code instead of an error event inside a 200 stream."""
        outputs = self.stream(request)
        try:
            first = await anext(outputs)
        except BaseException:
            await outputs.aclose()
            raise

        async def resumed() -> AsyncGenerator[GenerationOutput, None]:
            try:
                yield first
                async for out in outputs:
                    yield out
            finally:
                await outputs.aclose()

        return resumed()

    async def run(self, request: EngineRequest) -> Result:
        """The whole result at once (non-streaming): the engine sends only the final output."""
        request = dataclasses.replace(
            request, params=dataclasses.replace(request.params, final_only=True))
        result = Result(len(request.prompt_token_ids),
                        [ChoiceResult() for _ in range(request.params.n)])
        async for out in self.stream(request):
            _accumulate(result.choices, out.choices)
            result.prompt_tokens = len(out.prompt_token_ids)
            result.prompt_logprobs = out.prompt_logprobs or result.prompt_logprobs
            result.prompt_token_logprobs = (out.prompt_token_logprobs
                                            or result.prompt_token_logprobs)
        result.confidences = request.confidences
        return result


def _accumulate(results: Sequence[ChoiceResult], deltas: Sequence[Choice]) -> None:
    for delta in deltas:
        choice = results[delta.index]
        choice.text += delta.text
        choice.token_count += len(delta.token_ids)
        choice.logprobs.extend(delta.logprobs or ())
        choice.finish_reason = delta.finish_reason or choice.finish_reason
