"""A streamed response's typed events (what the official `openai` client parses), read off the
chat path's chunks: `response.created` and `response.in_progress`; the reasoning item (the
thinking or the search's progress as `response.reasoning_text.delta`); the message
(`response.output_text.delta`); each tool call (`response.function_call_arguments.delta`);
each item opened with `response.output_item.added` and closed with its `.done` events; then
`response.completed` (or `response.incomplete`) with the whole response. With
`reasoning.summary`, the summary is known only once the search ends, so the answer's events are
held until then and follow the reasoning item's summary, in OpenAI's item order. An error after
the headers is an `error` event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from server.errors import to_api_error
from server.openai.protocol import FunctionCall, ToolCall, Usage
from server.openai.responses.output import (
    ItemIds,
    Outcome,
    call_item_id,
    function_call_item,
    message_item,
    output_text,
    reasoning_item,
    response_body,
    searched,
    status_of,
    summary_text,
)
from server.openai.responses.protocol import ResponsesRequest


class Events:
    """Writes one response's events, numbered, keeping what has been sent."""

    def __init__(self, request: ResponsesRequest, ids: ItemIds) -> None:
        self.request = request
        self.ids = ids
        self.outcome = Outcome()
        self.sequence = 0
        self.index = -1  # the output index of the item last opened
        self.open: str | None = None  # "reasoning" | "message" | a tool call's index
        self.calls: dict[int, dict[str, Any]] = {}  # tool call index -> its item so far
        self.reasoning_index: int | None = None

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        body = {"type": type_, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return body

    # --- opening and closing items ----------------------------------------------------------

    def _open(self, kind: str, item: dict[str, Any]) -> list[dict]:
        events = self.close()
        self.index += 1
        self.open = kind
        return events + [self.event("response.output_item.added", output_index=self.index,
                                    item=item)]

    def close(self) -> list[dict]:
        """The done events of the item open now (none if none is)."""
        kind, self.open = self.open, None
        if kind is None:
            return []
        at = {"output_index": self.index}
        if kind == "reasoning":
            text = self.outcome.reasoning_text
            item = reasoning_item(self.ids, self.outcome, None) or {}
            item["summary"] = self._summary()
            part = {"type": "reasoning_text", "text": text}
            return [self.event("response.reasoning_text.done", item_id=self.ids.reasoning,
                               content_index=0, text=text, **at),
                    self.event("response.content_part.done", item_id=self.ids.reasoning,
                               content_index=0, part=part, **at),
                    self.event("response.output_item.done", item=item, **at)]
        if kind == "message":
            text = self.outcome.content or ""
            return [self.event("response.output_text.done", item_id=self.ids.message,
                               content_index=0, text=text, logprobs=[], **at),
                    self.event("response.content_part.done", item_id=self.ids.message,
                               content_index=0, part=output_text(text), **at),
                    self.event("response.output_item.done", item=message_item(
                        self.ids, text, status_of(self.outcome)[0]), **at)]
        item = {**self.calls[int(kind)], "status": "completed"}
        return [self.event("response.function_call_arguments.done", item_id=item["id"],
                           name=item["name"], arguments=item["arguments"], **at),
                self.event("response.output_item.done", item=item, **at)]

    def _summary(self) -> list[dict[str, str]]:
        if self.request.summary() is None or self.outcome.search is None:
            return []
        return [{"type": "summary_text", "text": summary_text(self.outcome.search)}]

    # --- pieces of the answer ---------------------------------------------------------------

    def reasoning(self, delta: str) -> list[dict]:
        events = []
        if self.open != "reasoning":
            events = self._open("reasoning", {"id": self.ids.reasoning, "type": "reasoning",
                                              "summary": [], "content": [],
                                              "status": "in_progress"})
            self.reasoning_index = self.index
            events.append(self.event("response.content_part.added", item_id=self.ids.reasoning,
                                     output_index=self.index, content_index=0,
                                     part={"type": "reasoning_text", "text": ""}))
        self.outcome.reasoning_text += delta
        return events + [self.event("response.reasoning_text.delta", item_id=self.ids.reasoning,
                                    output_index=self.index, content_index=0, delta=delta)]

    def content(self, delta: str) -> list[dict]:
        events = []
        if self.open != "message":
            events = self._open("message", {**message_item(self.ids, "", "in_progress"),
                                            "content": []})
            events.append(self.event("response.content_part.added", item_id=self.ids.message,
                                     output_index=self.index, content_index=0,
                                     part=output_text("")))
        self.outcome.content = (self.outcome.content or "") + delta
        return events + [self.event("response.output_text.delta", item_id=self.ids.message,
                                    output_index=self.index, content_index=0, delta=delta,
                                    logprobs=[])]

    def tool_call(self, piece: dict[str, Any]) -> list[dict]:
        index, events = piece["index"], []
        function = piece.get("function") or {}
        if index not in self.calls:
            call_id = piece.get("id") or f"call_{self.ids.response[5:29]}{index}"
            self.calls[index] = function_call_item(call_item_id(call_id), ToolCall(
                id=call_id, function=FunctionCall(name=function.get("name", ""),
                                                  arguments="")), status="in_progress")
            events = self._open(str(index), dict(self.calls[index]))
        arguments = function.get("arguments")
        if arguments:
            self.calls[index]["arguments"] += arguments
            events.append(self.event("response.function_call_arguments.delta",
                                     item_id=self.calls[index]["id"], output_index=self.index,
                                     delta=arguments))
        return events

    def summary(self) -> list[dict]:
        """The reasoning item's summary, once the search has ended: sent on the open reasoning
        item, or as a reasoning item of its own when none was streamed."""
        if self.request.summary() is None or not (searched(self.outcome.search)
                                                  or self.outcome.reasoning_text):
            return []
        events = []
        if self.open != "reasoning":
            events = self._open("reasoning", {"id": self.ids.reasoning, "type": "reasoning",
                                              "summary": [], "content": [],
                                              "status": "in_progress"})
        text = summary_text(self.outcome.search or {})
        at = {"item_id": self.ids.reasoning, "output_index": self.index, "summary_index": 0}
        part = {"type": "summary_text", "text": text}
        return events + [
            self.event("response.reasoning_summary_part.added",
                       part={"type": "summary_text", "text": ""}, **at),
            self.event("response.reasoning_summary_text.delta", delta=text, **at),
            self.event("response.reasoning_summary_text.done", text=text, **at),
            self.event("response.reasoning_summary_part.done", part=part, **at)]

    def finished(self) -> tuple[list[dict], dict[str, Any]]:
        """The closing events and the whole response (as a body would return it)."""
        self.outcome.tool_calls = [ToolCall(id=item["call_id"], function=FunctionCall(
            name=item["name"], arguments=item["arguments"])) for _, item in
            sorted(self.calls.items())]
        events = self.content("") if self.outcome.content is None and not self.calls else []
        events += self.close()
        body = response_body(self.request, self.ids, self.outcome)
        kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
        return events + [self.event(kind, response=body)], body


async def response_events(request: ResponsesRequest, ids: ItemIds,
                          chunks: AsyncIterator[dict], on_done: Callable[[dict], None]
                          ) -> AsyncIterator[dict]:
    """The events of a response from its chat chunks; `on_done(body)` once it completes.
    Closing these events (the client gone) closes the chunks, which aborts the engine's work
    and frees the request's admission."""
    try:
        async for event in _events(request, ids, chunks, on_done):
            yield event
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _events(request: ResponsesRequest, ids: ItemIds, chunks: AsyncIterator[dict],
                  on_done: Callable[[dict], None]) -> AsyncIterator[dict]:
    writer = Events(request, ids)
    created = response_body(request, ids, None)
    yield writer.event("response.created", response=created)
    yield writer.event("response.in_progress", response=created)
    hold = request.summary() is not None
    held: list[tuple[str, Any]] = []
    async for chunk in chunks:
        if chunk.get("reasoning") is not None:
            writer.outcome.search = chunk["reasoning"]
        if chunk.get("usage") is not None:
            writer.outcome.usage = Usage.model_validate(chunk["usage"])
        for choice in chunk["choices"]:
            delta = choice["delta"]
            pieces: list[tuple[str, Any]] = []
            if delta.get("content"):
                pieces.append(("content", delta["content"]))
            pieces += [("tool", call) for call in delta.get("tool_calls") or ()]
            if delta.get("reasoning"):
                for event in writer.reasoning(delta["reasoning"]):
                    yield event
            if choice.get("finish_reason"):
                writer.outcome.finish_reason = choice["finish_reason"]
            if hold:
                held += pieces
                continue
            for event in _pieces(writer, pieces):
                yield event
    for event in writer.summary():
        yield event
    for event in _pieces(writer, held):
        yield event
    events, body = writer.finished()
    on_done(body)
    for event in events:
        yield event


def _pieces(writer: Events, pieces: list[tuple[str, Any]]) -> list[dict]:
    events: list[dict] = []
    for kind, piece in pieces:
        events += writer.content(piece) if kind == "content" else writer.tool_call(piece)
    return events


def typed_event_stream(events: AsyncIterator[dict], headers: dict[str, str]
                       ) -> StreamingResponse:
    """`event: <type>` and `data: <json>` per event, as OpenAI and vLLM send them; an error
    after the headers is an `error` event in the OpenAI shape."""

    async def lines() -> AsyncIterator[str]:
        sequence = 0
        try:
            async for event in events:
                sequence = event["sequence_number"] + 1
                data = json.dumps(event, separators=(",", ":"))
                yield f"event: {event['type']}\ndata: {data}\n\n"
        except Exception as exc:  # CancelledError (client gone) is not an Exception
            error = to_api_error(exc)
            body = {"type": "error", "sequence_number": sequence, "code": error.code,
                    "message": error.message, "param": error.param}
            yield f"event: error\ndata: {json.dumps(body)}\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", **headers})
