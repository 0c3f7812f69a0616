"""OpenAI request and response types (the subset Deliberate serves), as vLLM's server shapes them."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.reasoning.options import ReasoningOptions

log = logging.getLogger(__name__)


class OpenAIModel(BaseModel):
    # Unknown fields are accepted and logged, as vLLM does; clients send vendor extensions.
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _warn_unknown(self) -> OpenAIModel:
        if self.model_extra:
            log.warning("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class SamplingRequest(OpenAIModel):
    """Fields shared by /v1/completions and /v1/chat/completions."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # vLLM's extension, used by load generators: generate max_tokens whatever the model says.
    ignore_eos: bool = False
    # Reasoning extensions (design.md "Compute selection"; server/reasoning/).
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    reasoning: ReasoningOptions | None = None

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class CompletionRequest(SamplingRequest):
    prompt: str | list[int]
    logprobs: int | None = Field(None, ge=0)
    # vLLM's extension: top-k logprobs of every prompt token (how a reward model scores a path).
    prompt_logprobs: int | None = Field(None, ge=0)
    echo: Literal[False] = False


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)

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


# /v1/completions responses


class CompletionLogprobs(BaseModel):
    tokens: list[str] = []
    token_logprobs: list[float] = []
    top_logprobs: list[dict[str, float]] = []
    text_offset: list[int] = []


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None
    prompt_logprobs: list[dict[str, float] | None] | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    reasoning: dict[str, Any] | None = None  # how the answer was reached (server/reasoning/)


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
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    reasoning: dict[str, Any] | None = None  # how the answer was reached (server/reasoning/)


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None  # a search's progress: its best path so far


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: str | None = None


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
