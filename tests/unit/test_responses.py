"""/v1/responses (server/openai/responses/) through the official `openai` client, on the
scripted engines: the request as the chat request it means, the response and its typed events
as the client parses them, the store per API key, and the 400s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.responses import Response

from server.openai.responses.store import ResponseStore, Stored
from server.settings import Settings
from tests.fakes import FakeEngine
from tests.search_fakes import StepEngine
from tests.unit.test_reasoning_api import PROMPT, SCRIPT

REPLY = "1+1=2\nAnswer: 2"
KEYS = {"acme": "key-a", "globex": "key-b"}


def client_for(app, key: str = "none") -> openai.AsyncOpenAI:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return openai.AsyncOpenAI(base_url="http://test/v1", api_key=key, max_retries=0,
                              http_client=httpx.AsyncClient(transport=transport,
                                                            base_url="http://test"))


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(max_model_len=512)


@pytest.fixture
async def api(app) -> AsyncIterator[openai.AsyncOpenAI]:
    async with client_for(app) as client:
        yield client


async def test_a_string_input_is_answered_as_a_chat_message(api, engine):
    response = await api.responses.create(model="demo", input="Compute: 1+1",
                                          instructions="be brief", max_output_tokens=20)
    assert isinstance(response, Response) and response.status == "completed"
    assert response.output_text == REPLY
    [message] = response.output
    assert message.type == "message" and message.content[0].type == "output_text"
    # the instructions are the system message (the fake renders user turns only)
    assert engine.requests[-1][1] == [ord(c) for c in "Compute: 1+1\n"]
    assert engine.requests[-1][2].max_tokens == 20
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens) == (13, len(REPLY))
    assert usage.total_tokens == 13 + len(REPLY)
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert response.instructions == "be brief" and response.max_output_tokens == 20


async def test_message_items_with_content_parts(api, engine):
    response = await api.responses.create(model="demo", input=[
        {"role": "system", "content": "be brief"},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Compute: "},
                     {"type": "input_text", "text": "1+1"}]}])
    assert response.output_text == REPLY
    assert engine.requests[-1][1] == [ord(c) for c in "Compute: 1+1\n"]


async def test_a_cut_off_answer_is_incomplete(api):
    response = await api.responses.create(model="demo", input="Compute: 1+1",
                                          max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == REPLY[:3]


async def test_the_stream_is_typed_events_the_client_parses(api):
    stream = await api.responses.create(model="demo", input="Compute: 1+1", stream=True)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == REPLY
    completed = events[-1].response
    assert completed.output_text == REPLY and completed.usage.output_tokens == len(REPLY)
    assert events[0].response.id == completed.id
    assert events[2].item.id == completed.output[0].id


async def test_previous_response_id_continues_the_conversation(api, engine):
    first = await api.responses.create(model="demo", input="Compute: 1+1",
                                       instructions="be brief")
    second = await api.responses.create(model="demo", input="And 2+2?",
                                        previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert engine.requests[-1][1] == [ord(c) for c in "Compute: 1+1\nAnd 2+2?\n"]
    # streamed responses are stored too, and a chain goes on
    stream = await api.responses.create(model="demo", input="And 3+3?", stream=True,
                                        previous_response_id=second.id)
    third = [e async for e in stream][-1].response
    await api.responses.create(model="demo", input="Last", previous_response_id=third.id)
    assert engine.requests[-1][1] == [ord(c) for c in
                                      "Compute: 1+1\nAnd 2+2?\nAnd 3+3?\nLast\n"]
    assert (await api.responses.retrieve(third.id)).output_text == third.output_text


async def test_store_false_keeps_nothing(api):
    response = await api.responses.create(model="demo", input="Compute: 1+1", store=False)
    with pytest.raises(openai.BadRequestError) as refused:
        await api.responses.create(model="demo", input="x", previous_response_id=response.id)
    assert refused.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        await api.responses.retrieve(response.id)


class TestTenancy:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(api_keys=KEYS, default_strategy="greedy")

    async def test_a_tenant_sees_only_its_own_responses(self, app):
        async with client_for(app, "key-a") as acme, client_for(app, "key-b") as globex:
            mine = await acme.responses.create(model="demo", input="Compute: 1+1")
            assert (await acme.responses.retrieve(mine.id)).id == mine.id
            with pytest.raises(openai.NotFoundError):
                await globex.responses.retrieve(mine.id)
            with pytest.raises(openai.BadRequestError):
                await globex.responses.create(model="demo", input="x",
                                              previous_response_id=mine.id)
        async with client_for(app, "wrong") as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.responses.retrieve(mine.id)


def test_the_store_is_bounded_and_expires():
    now = [0.0]
    store = ResponseStore(size=2, ttl_s=10, clock=lambda: now[0])
    for name in ("a", "b", "c"):
        store.put("t", name, Stored({"id": name}, ()))
    assert store.get("t", "a") is None and store.get("t", "c") is not None  # the oldest went
    assert store.get("other", "c") is None
    now[0] = 10.5
    assert store.get("t", "c") is None and len(store) == 0
    ResponseStore(size=0, ttl_s=1).put("t", "x", Stored({}, ()))  # keeps none, no error


class TestReasoning:
    @pytest.fixture
    def engine(self) -> StepEngine:
        return StepEngine(prompt=PROMPT, script=SCRIPT)

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_n=4, max_logprobs=2, max_beam_width=4, max_depth=6,
                        search_verifiers={"logic": 1.0}, default_strategy="greedy")

    async def test_effort_runs_the_search_and_returns_a_reasoning_item(self, api):
        response = await api.responses.create(
            model="demo", input=PROMPT.strip(), max_output_tokens=64,
            reasoning={"effort": "medium", "summary": "auto"})
        reasoning, message = response.output
        assert reasoning.type == "reasoning" and message.type == "message"
        assert reasoning.summary[0].type == "summary_text"
        assert reasoning.summary[0].text.startswith("beam search: ")
        assert response.output_text.endswith("Answer: 14")  # the beam got past the slip
        assert response.reasoning.effort == "medium"
        assert response.model_extra["search"]["strategy"] == "beam"
        assert response.usage.output_tokens_details.reasoning_tokens > 0
        assert response.usage.output_tokens > response.usage.output_tokens_details \
            .reasoning_tokens

    async def test_deliberate_options_and_the_budget_alias(self, api):
        response = await api.responses.create(
            model="demo", input=PROMPT.strip(), max_output_tokens=64,
            reasoning={"strategy": "beam", "beam_width": 2, "max_tokens": 10})
        assert response.model_extra["search"]["strategy"] == "beam"
        assert response.usage.output_tokens <= 10 + 20  # a round in flight may finish
        assert response.output[0].summary == []  # none asked for

    async def test_a_streamed_search_shows_progress_then_its_summary_then_the_answer(self, api):
        stream = await api.responses.create(
            model="demo", input=PROMPT.strip(), max_output_tokens=64, stream=True,
            reasoning={"effort": "medium", "summary": "concise"})
        events = [event async for event in stream]
        types = [e.type for e in events]
        assert "response.reasoning_text.delta" in types
        summary_at = types.index("response.reasoning_summary_text.delta")
        assert summary_at < types.index("response.output_text.delta")
        done = [e.item for e in events if e.type == "response.output_item.done"]
        assert [item.type for item in done] == ["reasoning", "message"]
        assert done[0].summary[0].text.startswith("beam search")
        final = events[-1].response
        assert final.output_text.endswith("Answer: 14")
        assert [item.id for item in final.output] == [item.id for item in done]


class TestTools:
    CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'

    @pytest.fixture
    def engine(self) -> FakeEngine:
        return FakeEngine(max_model_len=512, reply=self.CALL)

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(default_strategy="greedy", tool_call_parser="hermes")

    async def test_a_call_is_a_function_call_item_and_its_output_goes_back(self, api, engine):
        tool = {"type": "function", "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
        response = await api.responses.create(model="demo", input="Weather in Paris?",
                                              tools=[tool])
        [call] = response.output
        assert call.type == "function_call" and call.name == "get_weather"
        assert json.loads(call.arguments) == {"city": "Paris"}
        engine.reply = "Sunny."
        answer = await api.responses.create(model="demo", tools=[tool], input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
        assert answer.output_text == "Sunny."
        assert engine.requests[-1][1] == [ord(c) for c in
                                          "tool get_weather\nWeather in Paris?\nsunny\n"]
        engine.reply = TestTools.CALL
        stream = await api.responses.create(model="demo", input="Weather?", tools=[tool],
                                            stream=True)
        events = [e async for e in stream]
        arguments = "".join(e.delta for e in events
                            if e.type == "response.function_call_arguments.delta")
        assert json.loads(arguments) == {"city": "Paris"}
        assert events[-1].response.output[0].type == "function_call"


@pytest.mark.parametrize(("body", "param"), [
    ({"background": True}, "background"),
    ({"text": {"format": {"type": "json_object"}}}, "text"),
    ({"include": ["reasoning.encrypted_content"]}, "include"),
    ({"truncation": "auto"}, "truncation"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"input": [{"type": "input_image", "image_url": "x"}]}, "input.0.type"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input.0.content"),
    ({"input": []}, "input"),
    ({"max_output_tokens": 100000}, "max_output_tokens"),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"reasoning": {"summary": "long"}}, "reasoning.summary"),
    ({"reasoning": {"strategy": "nope"}}, "reasoning.strategy"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": "auto"}, "tool_choice"),  # without tools
    ({"input": [{"type": ["message"]}]}, "input.0.type"),
    ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
    ({"tools": [{"type": "function", "name": "f"}]}, "tools"),  # no --tool-call-parser
    ({"model": "nope"}, "model"),
])
async def test_what_this_server_cannot_honour_is_a_400_naming_it(client, body, param):
    r = await client.post("/v1/responses", json={"model": "demo", "input": "Compute: 1+1",
                                                 **body})
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["param"] == param
    assert "{kind}" not in r.json()["error"]["message"]  # placeholders filled in
    assert "!r}" not in r.json()["error"]["message"]


async def test_harmless_values_of_unsupported_fields_are_accepted(client):
    r = await client.post("/v1/responses", json={
        "model": "demo", "input": "Compute: 1+1", "background": False, "include": [],
        "truncation": "disabled", "text": {"format": {"type": "text"}}, "metadata": {"a": "b"},
        "service_tier": "auto"})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"a": "b"}
    assert r.headers["x-reasoning-strategy"] == "greedy"


async def test_an_unknown_response_is_a_404(client):
    r = await client.get("/v1/responses/resp_nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_response_is_the_engine_request_its_chat_completion_makes(api, engine):
    await api.responses.create(model="demo", input="Compute: 1+1", instructions="be brief",
                               max_output_tokens=9, temperature=0.7, top_p=0.9)
    await api.chat.completions.create(model="demo", max_completion_tokens=9, temperature=0.7,
                                      top_p=0.9, messages=[
                                          {"role": "system", "content": "be brief"},
                                          {"role": "user", "content": "Compute: 1+1"}])
    (_, response_ids, response_params), (_, chat_ids, chat_params) = engine.requests[-2:]
    assert response_ids == chat_ids and response_params == chat_params
