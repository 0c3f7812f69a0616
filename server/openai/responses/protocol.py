"""The Responses API request (the subset Deliberate serves), and its input read as chat
messages. Fields of OpenAI's API that this server cannot honour are a 400 naming them, unless
they ask for nothing (`UNSUPPORTED`); fields the API does not have are logged and ignored, as
on the other endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from server.openai.protocol import OpenAIModel, StreamOptions
from server.reasoning.aliases import effort_aliases
from server.reasoning.options import EFFORTS, ReasoningOptions

# Fields of the Responses API this server does not honour: field -> (values that ask for
# nothing, what to do instead).
UNSUPPORTED: dict[str, tuple[tuple[object, ...], str]] = {
    "background": ((None, False), "drop it (responses are answered in the request)"),
    "conversation": ((None,), "send previous_response_id to continue a conversation"),
    "include": ((None, []), "drop it (nothing more can be included)"),
    "max_tool_calls": ((None,), "drop it"),
    "prompt": ((None,), "send input and instructions (no stored prompt templates)"),
    "text": ((None, {"format": {"type": "text"}}),
             "drop it or send {\"format\": {\"type\": \"text\"}} (no structured output)"),
    "top_logprobs": ((None, 0), "drop it (no logprobs on this endpoint; chat completions "
                                "return them)"),
    "truncation": ((None, "disabled"), "drop it (a prompt longer than the context is a 400)"),
    "service_tier": ((None, "auto", "default"), "drop it"),
    "context_management": ((None, []), "drop it"),
    "prompt_cache_key": ((None,), "drop it (the prefix cache is keyed by API key)"),
    "prompt_cache_retention": ((None,), "drop it"),
    "safety_identifier": ((None,), "send user (the safety policy's caller)"),
    "moderation": ((None,), "drop it (the server's safety policy applies)"),
}


class TextContent(BaseModel):
    type: Literal["input_text", "output_text", "text"]
    text: str


class MessageItem(BaseModel):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[TextContent]
    # an output message sent back as input carries these; they are not read
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionCallItem(BaseModel):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(BaseModel):
    type: Literal["function_call_output"]
    call_id: str
    output: str
    id: str | None = None
    status: str | None = None


class ReasoningItem(BaseModel):
    """A reasoning item sent back as input: accepted and left out of the prompt (as a chat
    template leaves out earlier turns' thinking)."""
    model_config = ConfigDict(extra="allow")
    type: Literal["reasoning"]


def _item_kind(item: dict[str, Any]) -> object:
    kind = item.get("type", "message")
    return kind if isinstance(kind, str) else repr(kind)


class ResponseReasoning(ReasoningOptions):
    """`reasoning`: OpenAI's effort and summary, and Deliberate's own options beside them."""

    effort: Literal[EFFORTS] | None = None  # type: ignore[valid-type]
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None  # its older name


class FunctionTool(BaseModel):
    """A function tool as the Responses API writes it (flat: no `function` wrapper)."""
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ResponsesRequest(OpenAIModel):
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    reasoning: ResponseReasoning | None = None
    store: bool = True
    previous_response_id: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None  # echoed on the response, as OpenAI does
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto"] | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, (harmless, instead) in UNSUPPORTED.items():
            if name in data and data[name] not in harmless:
                raise PydanticCustomError("unsupported", "not supported by this server; {instead}",
                                          {"param": name, "instead": instead})
        reasoning = data.get("reasoning")
        if isinstance(reasoning, dict) and "max_tokens" in reasoning:
            # OpenRouter's budget is the search's budget_tokens, as on chat requests (the
            # effort stays: it is this endpoint's own field)
            effort = {k: v for k, v in reasoning.items() if k == "effort"}
            rest = effort_aliases({"reasoning": {k: v for k, v in reasoning.items()
                                                 if k != "effort"}})
            data = {**data, "reasoning": {**rest.get("reasoning", {}), **effort}}
        return data

    @model_validator(mode="after")
    def _input_items(self) -> ResponsesRequest:
        if self.tool_choice not in (None, "none") and not self.tools:
            raise PydanticCustomError("tool_choice", "tool_choice needs tools: send the tools "
                                      "it may call, or drop it", {"param": "tool_choice"})
        self.items()  # each item checked once, where the request is validated
        if self.input == [] or self.input == "":
            raise PydanticCustomError("input", "input is empty: send a string or at least one "
                                      "message", {"param": "input"})
        return self

    def items(self) -> list[MessageItem | FunctionCallItem | FunctionCallOutputItem]:
        """The input as items (a string is one user message); reasoning items left out."""
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        kinds = {"message": MessageItem, "function_call": FunctionCallItem,
                 "function_call_output": FunctionCallOutputItem, "reasoning": ReasoningItem}
        items = []
        for i, raw in enumerate(self.input):
            kind = _item_kind(raw)
            if kind not in kinds:
                raise PydanticCustomError(
                    "input_item", "items of type {kind} are not supported; send messages, "
                    "function_call and function_call_output items",
                    {"param": f"input.{i}.type", "kind": repr(kind)})
            try:
                item = kinds[kind].model_validate(raw)
            except Exception as exc:
                first = exc.errors()[0]  # type: ignore[attr-defined]
                where = ".".join(str(p) for p in first["loc"]
                                 if p not in ("str", "list[TextContent]"))
                raise PydanticCustomError(
                    "input_item", "{msg}", {"param": f"input.{i}.{where}".rstrip("."),
                                            "msg": first["msg"]}) from None
            if not isinstance(item, ReasoningItem):
                items.append(item)
        return items

    def effort(self) -> str | None:
        return None if self.reasoning is None else self.reasoning.effort

    def summary(self) -> str | None:
        if self.reasoning is None:
            return None
        return self.reasoning.summary or self.reasoning.generate_summary

    def deliberate_options(self) -> dict[str, Any] | None:
        """Deliberate's own reasoning options (what a chat request's `reasoning` takes)."""
        if self.reasoning is None:
            return None
        options = self.reasoning.model_dump(
            exclude_unset=True, exclude={"effort", "summary", "generate_summary"})
        return options or None
