"""Tool calling on chat completions (server/openai/chat/tools.py): tools rendered by the chat
template, the output read by vLLM's hermes parser, whole and streamed, on the scripted engine."""

from __future__ import annotations

import json

import pytest

from server.settings import Settings
from tests.fakes import FakeEngine
from tests.sse import parse_events

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(max_model_len=512, reply=CALL)


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, max_logprobs=2, default_strategy="greedy",
                    tool_call_parser="hermes")


def chat(**extra) -> dict:
    return {"model": "demo", "messages": ASK, "tools": [WEATHER], **extra}


async def test_tools_are_rendered_and_the_call_is_parsed(client, engine):
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert engine.requests[-1][1] == [ord(c) for c in "tool get_weather\nWeather in Paris?\n"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_text_before_a_call_is_content(client, engine):
    engine.reply = "Let me look.\n" + CALL
    r = await client.post("/v1/chat/completions", json=chat())
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "Let me look.\n" and len(message["tool_calls"]) == 1


async def test_an_answer_without_a_call_is_plain_content(client, engine):
    engine.reply = "It is sunny."
    r = await client.post("/v1/chat/completions", json=chat())
    choice = r.json()["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "It is sunny."}
    assert choice["finish_reason"] == "stop"


async def test_tool_choice_none_offers_no_tools_and_reads_no_calls(client, engine):
    r = await client.post("/v1/chat/completions", json=chat(tool_choice="none"))
    choice = r.json()["choices"][0]
    assert engine.requests[-1][1] == [ord(c) for c in "Weather in Paris?\n"]
    assert choice["message"]["content"] == CALL and "tool_calls" not in choice["message"]


async def test_parallel_tool_calls_false_keeps_the_first(client, engine):
    engine.reply = CALL + "\n" + CALL.replace("Paris", "Rome")
    both = (await client.post("/v1/chat/completions", json=chat())).json()
    first = (await client.post("/v1/chat/completions", json=chat(
        parallel_tool_calls=False))).json()
    assert len(both["choices"][0]["message"]["tool_calls"]) == 2
    [call] = first["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def test_the_call_streams_as_tool_call_deltas(client, engine):
    engine.reply = "Sure.\n" + CALL
    r = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert r.status_code == 200, r.text
    chunks = [c for c in parse_events(r.text) if c["choices"]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("content") or "" for d in deltas) == "Sure.\n"
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    assert calls[0]["id"] and calls[0]["function"]["name"] == "get_weather"
    assert all(call["index"] == 0 for call in calls)
    arguments = "".join(call["function"].get("arguments", "") for call in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # the tag is never shown as content
    assert not any("<tool_call>" in (d.get("content") or "") for d in deltas)


async def test_tool_and_assistant_call_messages_are_accepted(client, engine):
    engine.reply = "It is sunny in Paris."
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r = await client.post("/v1/chat/completions", json=chat(messages=history))
    assert r.status_code == 200, r.text
    assert engine.requests[-1][1] == [ord(c) for c in
                                      "tool get_weather\nWeather in Paris?\nsunny\n"]
    assert r.json()["choices"][0]["message"]["content"] == "It is sunny in Paris."


async def test_auto_answers_tools_in_one_pass(client, engine):
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "auto"}))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == "greedy"
    assert r.json()["choices"][0]["message"]["tool_calls"]


@pytest.mark.parametrize(("extra", "param"), [
    ({"reasoning": {"strategy": "beam"}}, "tools"),  # a search: drop tools or the strategy
    ({"reasoning_effort": "high"}, "tools"),  # an effort that asks for a search, the same
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
     "tools.0.function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools.0.type"),
    ({"tools": None, "tool_choice": "auto"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, None),
    ({"messages": [{"role": "user", "tool_calls": [{"id": "c", "function": {
        "name": "f", "arguments": "{}"}}]}]}, "messages.0.content"),
])
async def test_what_tools_cannot_do_is_a_400_naming_it(client, extra, param):
    r = await client.post("/v1/chat/completions", json=chat(**extra))
    if param is None:  # an empty list of calls is no call
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


async def test_without_a_parser_tools_are_a_400_that_says_how(app, client):
    app.state.chat_service.tools.__init__(None, None)
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 400
    assert "--tool-call-parser" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "tools"


def test_an_unknown_parser_name_stops_start_up():
    from server.openai.chat.tools import ToolCalling

    with pytest.raises(ValueError, match="hermes"):
        ToolCalling("no_such_parser", None)


def test_a_parser_without_vllm_installed_says_so(monkeypatch):
    import sys

    from server.openai.chat.tools import ToolCalling

    monkeypatch.setitem(sys.modules, "vllm.tool_parsers", None)
    with pytest.raises(ValueError, match="needs vLLM installed"):
        ToolCalling("hermes", None)
