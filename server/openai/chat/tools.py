"""Tool calling on single passes, as vLLM does it: the request's `tools` are rendered by the
model's chat template, and the output is read by vLLM's own tool parser for the model's format
(`--tool-call-parser`, vLLM's names: hermes, llama3_json, mistral, ...), whole or as it
streams. vLLM is imported only when a parser is configured, so a server without one (and a
remote-mode server without vLLM) never needs it.

A search returns whole answers judged by verifiers that know nothing of tool calls, so tools
are a single-pass feature: `auto` answers them in one pass, a named search strategy is a 400
that says to drop `tools` or the strategy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import bad_request
from server.openai.protocol import (
    ChatCompletionRequest,
    DeltaFunctionCall,
    DeltaToolCall,
    FunctionCall,
    ToolCall,
)


def parser_class(name: str) -> type:
    """vLLM's tool parser registered as `name` (ValueError listing the names otherwise)."""
    try:
        from vllm.tool_parsers import ToolParserManager
    except ImportError as exc:  # a remote-mode install without vLLM
        raise ValueError(f"--tool-call-parser needs vLLM installed here (the parsers are "
                         f"vLLM's): {exc}") from None

    try:
        return ToolParserManager.get_tool_parser(name)
    except KeyError:
        raise ValueError(f"--tool-call-parser {name!r} is not one of vLLM's tool parsers: "
                         f"{', '.join(ToolParserManager.list_registered())}") from None


@dataclass
class Parsed:
    content: str | None
    tool_calls: list[ToolCall]


class ToolCalling:
    """Reads tool calls out of a model's output with the configured vLLM parser."""

    def __init__(self, parser_name: str | None, tokenizer: object | None) -> None:
        self.parser_name = parser_name
        self.tokenizer = tokenizer
        self._parser = parser_class(parser_name) if parser_name is not None else None

    def check(self, request: ChatCompletionRequest) -> None:
        """400s for what this server cannot do with the request's tools."""
        if not request.tools:
            return
        if self._parser is None:
            raise bad_request("this server reads no tool calls: start it with "
                              "--tool-call-parser NAME (vLLM's parser for the model's format, "
                              "e.g. hermes), or drop tools", param="tools")
        if request.tool_choice == "required" or not isinstance(request.tool_choice,
                                                               (str, type(None))):
            raise bad_request("tool_choice \"required\" or a named function needs guided "
                              "decoding, which this server does not run; send \"auto\" (the "
                              "model decides) or \"none\"", param="tool_choice")

    def tools_for_template(self, request: ChatCompletionRequest) -> list[dict] | None:
        """The tools as the chat template reads them (None: none offered)."""
        if not request.uses_tools():
            return None
        return [tool.model_dump(exclude_none=True) for tool in request.tools or ()]

    def parse(self, request: ChatCompletionRequest, text: str) -> Parsed:
        """The content and tool calls of a whole output."""
        parser = self._new(request)
        info = parser.extract_tool_calls(text, self._vllm_request(request))
        if not info.tools_called:
            return Parsed(text, [])
        calls = [ToolCall(id=call.id, function=FunctionCall(
            name=call.function.name, arguments=call.function.arguments))
            for call in info.tool_calls]
        if request.parallel_tool_calls is False:
            calls = calls[:1]
        return Parsed(info.content, calls)

    def stream(self, request: ChatCompletionRequest) -> ToolStream:
        return ToolStream(self._new(request), self._vllm_request(request),
                          single=request.parallel_tool_calls is False)

    def _new(self, request: ChatCompletionRequest):
        assert self._parser is not None, "check() refuses tools without a parser"
        return self._parser(self.tokenizer, self._vllm_request(request).tools)

    @staticmethod
    def _vllm_request(request: ChatCompletionRequest):
        """The request as vLLM's parsers read it (its tools and tool_choice)."""
        from vllm.entrypoints.openai.chat_completion.protocol import (
            ChatCompletionRequest as VllmChatRequest,
        )

        return VllmChatRequest.model_validate({
            "model": request.model, "messages": [],
            "tools": [tool.model_dump(exclude_none=True) for tool in request.tools or ()],
            "tool_choice": "auto"})


@dataclass
class ToolStream:
    """One choice's output as it streams: each piece gives the content to send and the pieces
    of tool calls (ids, names, then argument increments)."""

    parser: Any
    request: Any
    single: bool = False  # parallel_tool_calls false: pieces of the first call only
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    called: bool = False

    def feed(self, piece: str, piece_ids: Sequence[int]) -> tuple[str | None,
                                                                 list[DeltaToolCall]]:
        previous, previous_ids = self.text, list(self.token_ids)
        self.text += piece
        self.token_ids.extend(piece_ids)
        delta = self.parser.extract_tool_calls_streaming(
            previous, self.text, piece, previous_ids, self.token_ids, list(piece_ids),
            self.request)
        if delta is None:
            return None, []
        calls = [_delta_call(call) for call in delta.tool_calls
                 if not (self.single and call.index > 0)]
        self.called = self.called or bool(calls)
        return delta.content, calls

    def finish(self) -> list[DeltaToolCall]:
        """The last call's arguments the parser read but has not streamed yet."""
        rest = self.parser.get_remaining_unstreamed_args() if self.called else ""
        index = len(self.parser.prev_tool_call_arr) - 1
        if not rest or (self.single and index > 0):
            return []
        return [DeltaToolCall(index=index, function=DeltaFunctionCall(arguments=rest))]


def _delta_call(call) -> DeltaToolCall:
    function = call.function
    if isinstance(function, dict):
        function = DeltaFunctionCall(**function)
    elif function is not None:
        function = DeltaFunctionCall(name=function.name, arguments=function.arguments)
    return DeltaToolCall(index=call.index, id=call.id, type=call.type, function=function)


def template_messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The messages as chat templates read them: text content; an assistant turn's tool calls
    with their arguments as objects (Qwen2.5's and Hermes' templates write them with tojson,
    as vLLM passes them); a tool turn's call id."""
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.text()}
        if m.name is not None:
            message["name"] = m.name
        if m.tool_calls:
            message["tool_calls"] = [{"id": call.id, "type": "function", "function": {
                "name": call.function.name, "arguments": _arguments(call.function.arguments)}}
                for call in m.tool_calls]
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        messages.append(message)
    return messages


def _arguments(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments  # not JSON: the template gets the text the model wrote
