"""Tool calling on the real engine: the fixture model trained to call a tool in the hermes
format (tests/real_models `qwen2-tools`), served in this process behind the app with
--tool-call-parser hermes, called through the official `openai` client: the call parsed into
`tool_calls` whole and streamed, and a Responses API function_call item. An engine of its own
(a 0.6 MB model: a few seconds to start), as tests/integration/test_real_models.py's are: no
session server serves a model that writes tool calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from engine.local import LocalEngineConfig, open_local_engine
from server.app import create_app
from server.settings import Settings
from tests.real_models.build import model_dir
from tests.real_models.chat_models import QWEN2_TOOLS
from tests.real_models.conversations import WEATHER_TOOL

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
async def engine():
    config = LocalEngineConfig(model=str(model_dir(QWEN2_TOOLS.name)),
                               served_model_name=QWEN2_TOOLS.name, kv_cache_bytes=32 * 2**20,
                               enable_lora=False, block_size=32)
    async with open_local_engine(config) as started:
        yield started


@pytest.fixture
async def client(engine) -> AsyncIterator[openai.AsyncOpenAI]:
    app = create_app(Settings(served_model_name=QWEN2_TOOLS.name, default_strategy="greedy",
                              enable_lora=False, confidence_file="", tool_call_parser="hermes"),
                     engine)
    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 timeout=120)
        async with openai.AsyncOpenAI(base_url="http://test/v1", api_key="unused",
                                      max_retries=0, http_client=http) as client:
            yield client


async def test_the_models_hermes_call_is_parsed_into_tool_calls(client):
    reply = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, messages=ASK, tools=[WEATHER_TOOL], max_tokens=64,
        temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city"}
    assert not choice.message.content  # the call is not shown as text
    # without tools offered the model is not asked to call one
    plain = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, messages=[{"role": "user", "content": "What is the capital "
                                                                      "of France?"}],
        tools=[WEATHER_TOOL], max_tokens=64, temperature=0)
    assert plain.choices[0].finish_reason == "stop" and not plain.choices[0].message.tool_calls


async def test_the_call_streams_as_tool_call_deltas(client):
    whole = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, messages=ASK, tools=[WEATHER_TOOL], max_tokens=64,
        temperature=0)
    stream = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, messages=ASK, tools=[WEATHER_TOOL], max_tokens=64,
        temperature=0, stream=True)
    pieces = [c.choices[0] async for c in stream if c.choices]
    calls = [call for p in pieces for call in p.delta.tool_calls or ()]
    assert calls[0].function.name == "get_weather" and calls[0].id
    arguments = "".join(call.function.arguments or "" for call in calls)
    assert arguments == whole.choices[0].message.tool_calls[0].function.arguments
    assert pieces[-1].finish_reason == "tool_calls"
    assert not "".join(p.delta.content or "" for p in pieces)


async def test_a_tool_result_goes_back_and_the_model_answers(client):
    first = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, messages=ASK, tools=[WEATHER_TOOL], max_tokens=64,
        temperature=0)
    call = first.choices[0].message.tool_calls[0]
    reply = await client.chat.completions.create(
        model=QWEN2_TOOLS.name, tools=[WEATHER_TOOL], max_tokens=32, temperature=0,
        messages=[*ASK, first.choices[0].message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assert reply.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result read


async def test_a_responses_function_call_item(client):
    tool = {"type": "function", **WEATHER_TOOL["function"]}
    response = await client.responses.create(model=QWEN2_TOOLS.name, input=ASK[0]["content"],
                                             tools=[tool], max_output_tokens=64, temperature=0)
    [call] = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert set(json.loads(call.arguments)) == {"city"}
