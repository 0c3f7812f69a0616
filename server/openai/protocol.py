"""OpenAI request and response types (the subset Deliberate serves), as vLLM's server shapes them."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from server.reasoning.aliases import effort_aliases
from server.reasoning.options import EFFORTS, ReasoningOptions, Seed

log = logging.getLogger(__name__)


class OpenAIModel(BaseModel):
    # Unknown fields are accepted and logged, as vLLM does; clients send vendor extensions.
    # NaN and Infinity (which Python's JSON parser accepts) are no number a field can mean.
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        # JSON may escape half a UTF-16 pair ("\ud800"); no tokenizer can encode the result.
        where = unencodable_text(data) if isinstance(data, dict) else None
        if where is not None:
            raise PydanticCustomError(
                "unicode", "not valid Unicode: it holds an unpaired UTF-16 surrogate (a lone "
                "\\ud800-\\udfff escape); send the text as valid UTF-8", {"param": where})
        return data

    @model_validator(mode="after")
    def _warn_unknown(self) -> OpenAIModel:
        if self.model_extra:
            log.warning("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


def unencodable_text(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in a JSON value that is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        found = unencodable_text(key, where) or unencodable_text(item, where)
        if found is not None:
            return found
    return None


class StreamOptions(OpenAIModel):
    include_usage: bool = False


# OpenAI fields this server knows but cannot honour: field -> (values that ask for nothing, what
# to do instead). Ignoring them, as an unknown field is, would answer a different question.
UNSUPPORTED: dict[str, tuple[tuple[object, ...], str]] = {
    "echo": ((None, False), "drop it"),
    "suffix": ((None, ""), "drop it (no fill-in-the-middle)"),
    "best_of": ((None, 1), "use n for several samples, or reasoning {\"strategy\": \"best_of_n\", "
                           "\"n_candidates\": k} for the verifiers' best of k"),
    "response_format": ((None, {"type": "text"}),
                        "drop it or send {\"type\": \"text\"} (no structured output)"),
    "tools": ((None, []), "tools are for chat completions (rendered by the chat template)"),
    "tool_choice": ((None, "none"), "tools are for chat completions"),
    "functions": ((None, []), "send `tools` instead (the deprecated functions are not read)"),
    "function_call": ((None, "none"), "send `tool_choice` instead"),
    # vLLM's completions field: a client's tensor (vLLM's prompt-embeds input had a
    # memory-corruption CVE in 2025); only embeddings the server builds from a validated prompt
    # adapter reach the engine.
    "prompt_embeds": ((None,), "clients' embeddings are never accepted; train a prompt adapter "
                               "(python -m training.prompt_tuning), load it and name it as model"),
}


class SamplingRequest(OpenAIModel):
    """Fields shared by /v1/completions and /v1/chat/completions."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    # None (the official client's default): a greedy pass decodes greedily, a search samples
    # its branches at the server's search temperature, n samples use the model's defaults
    # (server/openai/sampling_defaults.py).
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    # token id (as a string, as JSON keys are) -> bias added to its logit, OpenAI's range
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # vLLM's extension, used by load generators: generate max_tokens whatever the model says.
    ignore_eos: bool = False
    # Reasoning extensions (design.md "Compute selection"; server/reasoning/).
    reasoning_effort: Literal[EFFORTS] | None = None  # type: ignore[valid-type]
    reasoning: ReasoningOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic refuses it as a body
        data = effort_aliases(data)
        for name, (harmless, instead) in UNSUPPORTED.items():
            if name in cls.model_fields:  # an endpoint that does honour it (completions' echo)
                continue
            if name in data and data[name] not in harmless:
                raise PydanticCustomError("unsupported", "not supported by this server; {instead}",
                                          {"param": name, "instead": instead})
        return data

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if stop == "" or (isinstance(stop, list) and "" in stop):
            raise ValueError("a stop string cannot be empty (it would stop before the first "
                             "token); drop it")
        return stop

    @field_validator("logit_bias")
    @classmethod
    def _token_id_keys(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        bad = [key for key in bias or {} if not key.isascii() or not key.isdigit()]
        if bad:
            raise ValueError(f"keys are token ids (non-negative integers as strings, e.g. "
                             f"{{\"50256\": -100}}); got {bad[:3]}")
        return bias

    def token_bias(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(key), value) for key, value in (self.logit_bias or {}).items())

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class CompletionRequest(SamplingRequest):
    # one prompt (text or token ids), or a batch of them, as OpenAI's and vLLM's endpoint take
    prompt: str | list[int] | list[str] | list[list[int]]
    # the prompt before each choice's text, and with `logprobs` its tokens' logprobs (the first
    # None); max_tokens 0 then scores the prompt alone (how lm-eval's loglikelihood asks)
    echo: bool = False
    max_tokens: int | None = Field(None, ge=0)
    logprobs: int | None = Field(None, ge=0)
    # vLLM's extension: top-k logprobs of every prompt token (how a reward model scores a path).
    prompt_logprobs: int | None = Field(None, ge=0)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_shape(cls, prompt: Any) -> Any:
        if not (isinstance(prompt, str) or _token_ids(prompt) or (
                isinstance(prompt, list) and prompt and (
                    all(isinstance(item, str) for item in prompt)
                    or all(_token_ids(item) for item in prompt)))):
            raise PydanticCustomError(
                "prompt_shape", "send a string, a list of token ids (integers), or a batch of "
                "either (a list of strings, or a list of token-id lists), not a mix")
        return prompt

    @model_validator(mode="after")
    def _nothing_to_generate_only_with_echo(self) -> CompletionRequest:
        if self.max_tokens == 0 and not self.echo:
            raise PydanticCustomError(
                "max_tokens_zero", "max_tokens 0 asks for nothing; it is for scoring the "
                "prompt with echo: true (and logprobs), else ask for at least 1",
                {"param": "max_tokens"})
        return self

    def batch(self) -> list[str] | list[list[int]] | None:
        """The prompts of a batch; None for a single prompt (text, or one list of token ids)."""
        prompt = self.prompt
        if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
            return prompt  # type: ignore[return-value]
        return None


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON, as the model wrote it


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # None only on an assistant turn that called tools
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant turn's calls
    tool_call_id: str | None = None  # a tool turn: the call it answers

    @model_validator(mode="after")
    def _content_or_calls(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise PydanticCustomError("content", "a {role} message needs content (only an "
                                      "assistant message with tool_calls may leave it out)",
                                      {"param": "content", "role": self.role})
        if self.tool_calls and self.role != "assistant":
            raise PydanticCustomError("tool_calls", "only an assistant message has tool_calls",
                                      {"param": "tool_calls"})
        return self

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text for part in self.content)


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema, shown to the model as it is
    strict: bool | None = None


class ChatTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    # Tool calling on single passes (server/openai/chat/tools.py); "required" and a named
    # function need guided decoding, which this server does not run: a 400 says so.
    tools: list[ChatTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None  # false: the first call only

    @model_validator(mode="after")
    def _tool_choice_needs_tools(self) -> ChatCompletionRequest:
        if self.tool_choice not in (None, "none") and not self.tools:
            raise PydanticCustomError("tool_choice", "tool_choice needs tools: send the tools "
                                      "it may call, or drop it", {"param": "tool_choice"})
        return self

    def uses_tools(self) -> bool:
        """Whether the model is offered tools (and its output read for calls)."""
        return bool(self.tools) and self.tool_choice != "none"

    def token_limit(self) -> int | None:
        # max_completion_tokens is the current name; max_tokens the deprecated one.
        return self.max_completion_tokens or self.max_tokens


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0  # generated but not in the returned answers (search, probes)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails | None = None


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int | None = None
          ) -> Usage:
    details = None if reasoning_tokens is None else CompletionTokensDetails(
        reasoning_tokens=reasoning_tokens)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens,
                 completion_tokens_details=details)


def now() -> int:
    return int(time.time())


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in value)


# /v1/completions responses


# With finish_reason "content_filter": why the safety policy withheld the text; absent otherwise.
FilterReason = Annotated[str | None, Field(exclude_if=lambda reason: reason is None)]


class CompletionLogprobs(BaseModel):
    tokens: list[str] = []
    token_logprobs: list[float | None] = []  # None: an echoed prompt's first token
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None
    prompt_logprobs: list[dict[str, float] | None] | None = None
    content_filter_reason: FilterReason = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    # how the answer was reached (server/reasoning/); a batch's: one per prompt, in order
    reasoning: dict[str, Any] | list[dict[str, Any] | None] | None = None


# /v1/chat/completions responses


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprobEntry(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChatLogprobs(BaseModel):
    content: list[TokenLogprobEntry] = []


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None  # None: the model only called tools
    # the tools it called (a request with tools); left out otherwise, as OpenAI does
    tool_calls: list[ToolCall] | None = Field(None, exclude_if=lambda v: v is None)
    # A reasoning model's thinking (--reasoning-parser): vLLM's current name, and the older
    # one that clients written for DeepSeek's API read. Left out when there is none.
    reasoning: str | None = Field(None, exclude_if=lambda v: v is None)
    reasoning_content: str | None = Field(None, exclude_if=lambda v: v is None)


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None
    content_filter_reason: FilterReason = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    reasoning: dict[str, Any] | None = None  # how the answer was reached (server/reasoning/)


class DeltaFunctionCall(BaseModel):
    name: str | None = Field(None, exclude_if=lambda v: v is None)
    arguments: str | None = Field(None, exclude_if=lambda v: v is None)


class DeltaToolCall(BaseModel):
    """A piece of a streamed tool call: the first names it (id, type, name), the rest add to
    its arguments."""
    index: int
    id: str | None = Field(None, exclude_if=lambda v: v is None)
    type: Literal["function"] | None = Field(None, exclude_if=lambda v: v is None)
    function: DeltaFunctionCall | None = None


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    # Thinking, or a search's progress, as increments to append (both names, as the message)
    reasoning: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[DeltaToolCall] | None = Field(None, exclude_if=lambda v: v is None)


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None
    content_filter_reason: FilterReason = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    reasoning: dict[str, Any] | None = None


# /v1/models


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=now)
    owned_by: str = "deliberate"
    root: str | None = None
    parent: str | None = None  # the base model, for adapters


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
