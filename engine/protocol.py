"""What the server and search need from an inference engine, independent of vLLM.

Outputs stream as deltas: each `GenerationOutput` carries only the tokens produced since the
previous one, for the choices that advanced. Closing the generator early (`aclose()`, or
cancelling the task iterating it) aborts the request in the engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


class EngineDeadError(RuntimeError):
    """The engine stopped and cannot serve any more requests."""


class EngineUnavailable(EngineDeadError):
    """No replica can serve now (all are down or ejected); worth retrying after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidEngineRequest(ValueError):
    """The engine refused a request because of its content (the caller's fault). `status`: the
    HTTP status the caller should see (a remote engine passes on its upstream's 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ContextExceeded(InvalidEngineRequest):
    """The prompt does not fit in the model's context: the input is too long."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None  # top-k alternatives per generated token; 0 = the sampled one only
    prompt_logprobs: int | None = None  # top-k per prompt position (scoring a whole path at once)
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    # Deliver one output when the request finishes instead of per-token deltas: the same
    # result for a caller that does not stream, without per-token work in this process.
    final_only: bool = False
    # False: no output text, and logprob tokens named from a per-token-id cache instead of vLLM
    # decoding every top-k entry of every position (most of this process's time when a PRM
    # scores with prompt logprobs). For scoring calls, which read logprobs only.
    detokenize: bool = True
    # With prompt_logprobs: also name each position's own token (GenerationOutput.
    # prompt_token_logprobs, what `echo` returns). Off by default: a PRM scoring with prompt
    # logprobs never reads it, and building it costs ~3x the {token: logprob} dicts.
    name_prompt_tokens: bool = False
    # vLLM's scheduling priority, lower first (an engine whose scheduling_policy is "priority":
    # the local engine's by default, replicas started with --scheduling-policy priority; one
    # scheduling first come first served ignores it): who goes first when the engine's batch
    # is full, and who is preempted last when its KV cache is.
    priority: int = 0


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)  # the top-k alternatives at this position


@dataclass(frozen=True)
class Choice:
    """New output of one of the n samples since the previous `GenerationOutput`."""

    index: int
    text: str
    # Every generated id, as vLLM reports them: a stop string's tokens are in token_ids but not
    # in text, and so is the last id of a choice that ended on an EOS or stop token
    # (finish_reason "stop", stop_reason None or that id).
    token_ids: Sequence[int]
    logprobs: Sequence[TokenLogprob] | None = None
    finish_reason: str | None = None  # "stop" | "length" | "abort" once finished
    # With finish_reason "stop": the stop string (or token id) that ended it; None for end of
    # sequence. Search tells "end of a step" from "end of the solution" by it.
    stop_reason: str | int | None = None


@dataclass(frozen=True)
class GenerationOutput:
    request_id: str
    prompt_token_ids: Sequence[int]
    choices: Sequence[Choice]
    finished: bool
    # Set on the first output when prompt logprobs were asked for: one entry per prompt token,
    # None for the first (nothing precedes it), else {token: logprob} (the actual token + top-k).
    prompt_logprobs: Sequence[dict[str, float] | None] | None = None
    # With `name_prompt_tokens`: the same positions with the prompt's own token named (what
    # `echo` returns): its text and logprob, and the top-k as for a generated token; None for the
    # first.
    prompt_token_logprobs: Sequence[TokenLogprob | None] | None = None


# What a pooling model computes (vLLM's task names): "classify", one row of class logits for the
# whole sequence; "token_classify", one row per token its pooler keeps.
PoolingTask = Literal["classify", "token_classify"]


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    path: str
    kind: str = "lora"  # "lora" | "prompt" (virtual-token embeddings, `add_prompt_adapter`)


class Engine(Protocol):
    model_name: str
    max_model_len: int

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str:
        """The text of `token_ids` as the engine writes outputs (special tokens left out)."""
        ...

    def render_chat(self, messages: Sequence[dict[str, Any]],
                    add_generation_prompt: bool = True,
                    tools: Sequence[dict[str, Any]] | None = None) -> str:
        """The chat template applied to `messages`, ending where the assistant's reply starts;
        with `add_generation_prompt=False`, ending after the last message (a reward model
        reading a finished conversation); `tools` (OpenAI's tool definitions) offered to the
        model as its template writes them."""
        ...

    def generate(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams,
        request_id: str,
        adapter: str | None = None,
    ) -> AsyncGenerator[GenerationOutput, None]: ...

    async def abort(self, request_id: str) -> None: ...

    async def next_token_logprobs(
        self, prompt: str | Sequence[int], k: int, adapter: str | None = None
    ) -> dict[str, float]:
        """Log-probabilities of the k most likely tokens after `prompt` (for reward models)."""
        ...

    async def pool(self, prompt: str | Sequence[int], task: PoolingTask) -> list[list[float]]:
        """A pooling model's raw outputs for `prompt` (logits: no softmax or sigmoid applied).
        "classify": one row, the class logits of the whole sequence; "token_classify": one row
        per token the model's pooler keeps (every prompt token, or with vLLM's STEP pooler only
        the step tags'). An engine serving a generative model refuses it
        (`InvalidEngineRequest`)."""
        ...

    async def add_adapter(self, name: str, path: str) -> None: ...

    async def remove_adapter(self, name: str) -> None: ...

    async def list_adapters(self) -> list[AdapterInfo]: ...

    async def check_health(self) -> None:
        """Returns if the engine can serve; raises `EngineDeadError` otherwise."""
        ...

    async def shutdown(self) -> None: ...


@runtime_checkable
class PromptAdapterEngine(Protocol):
    """An engine that also serves prompt adapters (prompt tuning, P-tuning): `embeddings`
    [n_virtual, hidden] (float32) are prepended to the prompt of every request whose `adapter`
    names it, as vLLM's prompt embeddings. Only embeddings the server built from a validated
    artifact come here, never a client's (vLLM's prompt-embeds input had a memory-corruption
    CVE in 2025). `remove_adapter` and `list_adapters` cover both kinds."""

    async def add_prompt_adapter(self, name: str, embeddings) -> None: ...


@runtime_checkable
class Fleet(Protocol):
    """An engine in front of several replicas: how many of them take requests now (admission
    control sizes its lanes by them)."""

    def replicas_in_rotation(self) -> int: ...
