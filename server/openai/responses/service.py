"""/v1/responses as a chat completion: the request becomes the chat request it means (the
instructions as the system message, the stored conversation of `previous_response_id`, the
input as messages; max_output_tokens, temperature, top_p, the effort and Deliberate's
reasoning options, tools), answered by the chat service's own path (admission, routing,
search, safety, tools), and its answer reshaped into a response (output.py) or typed events
(events.py). Stored responses are per API key (store.py)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from server.errors import APIError, bad_request
from server.openai.chat.service import ChatService
from server.openai.protocol import ChatCompletionRequest, ChatCompletionResponse
from server.openai.responses.events import response_events, typed_event_stream
from server.openai.responses.output import ItemIds, Outcome, response_body
from server.openai.responses.protocol import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ResponsesRequest,
)
from server.openai.responses.store import ResponseStore, Stored
from server.reasoning.response import STRATEGY_HEADER
from server.tenancy import current_tenant

# The chat request's names of this endpoint's fields, for the errors the chat path raises.
_CHAT_NAMES = {"max_completion_tokens": "max_output_tokens", "messages": "input",
               "reasoning_effort": "reasoning.effort"}


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore) -> None:
        self.chat = chat
        self.store = store

    async def create(self, request: ResponsesRequest):
        history = self._history(request)
        chat_request = self.chat_request(request, history)
        try:
            job = self.chat.prepare(chat_request)
            strategy, answer = await self.chat.answer(chat_request, job)
        except APIError as exc:
            raise _renamed(exc) from None
        ids, headers = ItemIds(), {STRATEGY_HEADER: strategy}
        conversation = [m for m in chat_request.messages if m.role != "system"
                        or request.instructions is None]
        if request.stream:
            assert not isinstance(answer, ChatCompletionResponse)
            return typed_event_stream(response_events(
                request, ids, answer, lambda body: self._keep(request, body, conversation)),
                headers)
        assert isinstance(answer, ChatCompletionResponse)
        body = response_body(request, ids, _outcome(answer))
        self._keep(request, body, conversation)
        return JSONResponse(body, headers=headers)

    def get(self, response_id: str) -> dict[str, Any]:
        stored = self.store.get(_tenant(), response_id)
        if stored is None:
            raise APIError(404, f"no response {response_id!r} is stored for this API key (it "
                                f"was not stored, or has expired: responses are kept "
                                f"{self.store.ttl_s:g} s)", param="response_id",
                           code="not_found")
        return stored.body

    # --- the chat request -------------------------------------------------------------------

    def _history(self, request: ResponsesRequest) -> list[dict[str, Any]]:
        if request.previous_response_id is None:
            return []
        stored = self.store.get(_tenant(), request.previous_response_id)
        if stored is None:
            raise bad_request(f"previous response {request.previous_response_id!r} is not "
                              f"stored for this API key (it was created with store false, has "
                              f"expired after {self.store.ttl_s:g} s, or was never made); send "
                              f"the whole conversation as input", param="previous_response_id")
        return list(stored.messages)

    @staticmethod
    def chat_request(request: ResponsesRequest, history: list[dict[str, Any]]
                     ) -> ChatCompletionRequest:
        messages = ([{"role": "system", "content": request.instructions}]
                    if request.instructions is not None else [])
        messages += history + _input_messages(request)
        body: dict[str, Any] = {
            "model": request.model, "messages": messages,
            "max_completion_tokens": request.max_output_tokens,
            "temperature": request.temperature, "top_p": request.top_p,
            "stream": request.stream, "user": request.user,
            "reasoning_effort": request.effort(), "reasoning": request.deliberate_options(),
            "parallel_tool_calls": request.parallel_tool_calls,
            "tool_choice": request.tool_choice,
            "tools": None if request.tools is None else [
                {"type": "function", "function": tool.model_dump(exclude={"type"},
                                                                 exclude_none=True)}
                for tool in request.tools]}
        if request.stream:
            body["stream_options"] = {"include_usage": True}  # for response.completed
        try:
            return ChatCompletionRequest.model_validate(
                {k: v for k, v in body.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            path = [str(p) for p in first["loc"]]
            path += [str(first["ctx"]["param"])] if "param" in first.get("ctx", {}) else []
            path[:1] = [_CHAT_NAMES.get(path[0], path[0])] if path else []
            param = ".".join(path) or None
            raise bad_request(f"{param}: {first['msg']}", param=param) from None

    def _keep(self, request: ResponsesRequest, body: dict[str, Any],
              conversation: list) -> None:
        if not request.store:
            return
        messages = tuple(_message_dict(m) for m in conversation) + tuple(_answer(body))
        self.store.put(_tenant(), body["id"], Stored(body, messages))


def _input_messages(request: ResponsesRequest) -> list[dict[str, Any]]:
    """The input items as chat messages: consecutive function calls are one assistant turn's
    tool calls (after its text, if the turn had any), a call's output a tool message."""
    messages: list[dict[str, Any]] = []
    for item in request.items():
        if isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id,
                             "content": item.output})
        else:
            messages.append({"role": item.role, "content": item.text()})
    return messages


def _message_dict(message) -> dict[str, Any]:
    return message.model_dump(exclude_none=True)


def _answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The response's output as the assistant's turn (its thinking left out)."""
    text = "".join(part["text"] for item in body["output"] if item["type"] == "message"
                   for part in item["content"])
    calls = [{"id": item["call_id"], "type": "function",
              "function": {"name": item["name"], "arguments": item["arguments"]}}
             for item in body["output"] if item["type"] == "function_call"]
    if calls:
        return [{"role": "assistant", "content": text or None, "tool_calls": calls}]
    return [{"role": "assistant", "content": text}]


def _outcome(answer: ChatCompletionResponse) -> Outcome:
    choice = answer.choices[0]
    return Outcome(reasoning_text=choice.message.reasoning or "",
                   content=choice.message.content, tool_calls=choice.message.tool_calls or [],
                   finish_reason=choice.finish_reason, usage=answer.usage,
                   search=answer.reasoning)


def _tenant() -> str:
    tenant = current_tenant()
    return "" if tenant is None else tenant.name


def _renamed(exc: APIError) -> APIError:
    """A chat-path error in this endpoint's names (max_output_tokens, input, ...)."""
    if exc.param is None:
        return exc
    head, _, rest = exc.param.partition(".")
    if head not in _CHAT_NAMES:
        return exc
    message = exc.message
    for chat_name, name in _CHAT_NAMES.items():
        message = message.replace(chat_name, name)
    param = _CHAT_NAMES[head] + ("." + rest if rest and head != "messages" else "")
    return APIError(exc.status, message, param=param, code=exc.code, type=exc.type,
                    headers=exc.headers)
