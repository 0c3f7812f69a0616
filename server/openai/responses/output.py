"""A Responses API response shaped from what the chat path answered: output items of type
`reasoning` (the model's thinking, or a search's progress as streamed, and with
`reasoning.summary` a one-line summary of the search), `message` and `function_call`, as
OpenAI and vLLM shape them; usage with `output_tokens_details.reasoning_tokens`; Deliberate's
`reasoning` object of the chat response under `search` (OpenAI's `reasoning` field echoes the
request's effort and summary)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from server.openai.protocol import ToolCall, Usage
from server.openai.responses.protocol import ResponsesRequest


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass
class Outcome:
    """What the chat path answered, whole or gathered from its stream."""

    reasoning_text: str = ""  # thinking, or a search's progress
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    search: dict[str, Any] | None = None  # the chat response's `reasoning` object


@dataclass
class ItemIds:
    """The ids of a response's items (the same in its events and in its body)."""

    response: str = field(default_factory=lambda: new_id("resp"))
    reasoning: str = field(default_factory=lambda: new_id("rs"))
    message: str = field(default_factory=lambda: new_id("msg"))
    created_at: int = field(default_factory=lambda: int(time.time()))


def searched(search: dict[str, Any] | None) -> bool:
    return search is not None and (search.get("strategy") != "greedy" or "stages" in search)


def summary_text(search: dict[str, Any]) -> str:
    """The search in one line: what ran, how much, how good, why it stopped."""
    strategy = search.get("strategy", "greedy")
    head = f"{strategy} search" if searched(search) else "a single greedy pass"
    parts = []
    if "nodes" in search:
        parts.append(f"{search['nodes']} nodes in {search['engine_calls']} engine calls")
        if search.get("score") is not None:
            parts.append(f"best path score {search['score']:.3g}")
        if search.get("stopped_by"):
            parts.append(f"stopped by {search['stopped_by']}")
    if search.get("stages"):
        parts.append("stages " + ", ".join(str(s.get("strategy", s)) if isinstance(s, dict)
                                           else str(s) for s in search["stages"]))
    if search.get("difficulty") is not None:
        parts.append(f"difficulty {search['difficulty']:.2f}")
    confidence = (search.get("confidence") or {}).get("value")
    if confidence is not None:
        parts.append(f"confidence {confidence:.2f}")
    return f"{head}: {'; '.join(parts)}." if parts else f"{head}."


def reasoning_item(ids: ItemIds, outcome: Outcome, summary: str | None) -> dict[str, Any] | None:
    """The reasoning item, when the model thought or a search ran (None otherwise)."""
    if not outcome.reasoning_text and not searched(outcome.search):
        return None
    summaries = ([{"type": "summary_text", "text": summary_text(outcome.search or {})}]
                 if summary is not None else [])
    content = ([{"type": "reasoning_text", "text": outcome.reasoning_text}]
               if outcome.reasoning_text else [])
    return {"id": ids.reasoning, "type": "reasoning", "summary": summaries, "content": content,
            "encrypted_content": None, "status": "completed"}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(ids: ItemIds, text: str, status: str) -> dict[str, Any]:
    return {"id": ids.message, "type": "message", "role": "assistant", "status": status,
            "content": [output_text(text)]}


def function_call_item(item_id: str, call: ToolCall, status: str = "completed"
                       ) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "call_id": call.id,
            "name": call.function.name, "arguments": call.function.arguments, "status": status}


def call_item_id(call_id: str) -> str:
    return "fc_" + call_id.removeprefix("call_").removeprefix("chatcmpl-tool-")


def status_of(outcome: Outcome) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details): cut off by max_output_tokens or withheld by the safety
    policy is incomplete, as OpenAI says it."""
    reason = {"length": "max_output_tokens",
              "content_filter": "content_filter"}.get(outcome.finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def output_items(ids: ItemIds, outcome: Outcome, summary: str | None) -> list[dict[str, Any]]:
    status, _ = status_of(outcome)
    items = []
    reasoning = reasoning_item(ids, outcome, summary)
    if reasoning is not None:
        items.append(reasoning)
    if outcome.content or not outcome.tool_calls:
        items.append(message_item(ids, outcome.content or "", status))
    items += [function_call_item(call_item_id(call.id), call) for call in outcome.tool_calls]
    return items


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    details = usage.completion_tokens_details
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {
                "reasoning_tokens": details.reasoning_tokens if details else 0},
            "total_tokens": usage.total_tokens}


def response_body(request: ResponsesRequest, ids: ItemIds, outcome: Outcome | None,
                  status: str | None = None) -> dict[str, Any]:
    """The response object; `outcome` None: one still in progress (no output yet)."""
    incomplete = None
    if outcome is not None:
        status, incomplete = status_of(outcome)
    return {
        "id": ids.response, "object": "response", "created_at": ids.created_at,
        "status": status or "in_progress", "error": None, "incomplete_details": incomplete,
        "instructions": request.instructions, "max_output_tokens": request.max_output_tokens,
        "model": request.model,
        "output": [] if outcome is None else output_items(ids, outcome, request.summary()),
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": request.effort(), "summary": request.summary()},
        "store": request.store, "temperature": request.temperature, "top_p": request.top_p,
        "text": {"format": {"type": "text"}},
        "tool_choice": request.tool_choice or "auto",
        "tools": [tool.model_dump() for tool in request.tools or ()],
        "truncation": "disabled", "user": request.user, "metadata": request.metadata or {},
        "usage": None if outcome is None else usage_body(outcome.usage),
        "search": None if outcome is None else outcome.search,
    }
