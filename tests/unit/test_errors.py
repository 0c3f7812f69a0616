"""Every bad input gets a 4xx in the OpenAI error shape, and the server keeps serving."""

from __future__ import annotations

import json

import pytest

from engine.protocol import InvalidEngineRequest
from tests.sse import parse_events

OK_COMPLETION = {"model": "demo", "prompt": "x", "max_tokens": 2}
OK_CHAT = {"model": "demo", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}

BAD_COMPLETIONS = [
    # (body overrides, status, param)
    ({"model": None}, 400, "model"),
    ({"prompt": None}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": []}, 400, "prompt"),
    ({"prompt": ["a", [1]]}, 400, "prompt"),  # a batch mixes text and token ids
    ({"prompt": ["a", ""]}, 400, "prompt"),  # a batch with an empty prompt
    ({"prompt": "x" * 64}, 400, "prompt"),  # the fake's context is 64 tokens
    ({"max_tokens": 64}, 400, "max_tokens"),  # 1 prompt token + 64 > 64
    ({"max_tokens": 0}, 400, "max_tokens"),
    ({"max_tokens": "many"}, 400, "max_tokens"),
    ({"n": 0}, 400, "n"),
    ({"n": 5}, 400, "n"),  # above the test settings' max_n=4
    ({"n": 2, "temperature": 0}, 400, "n"),
    ({"temperature": -0.1}, 400, "temperature"),
    ({"temperature": 2.5}, 400, "temperature"),
    ({"top_p": 0}, 400, "top_p"),
    ({"top_p": 1.5}, 400, "top_p"),
    ({"logprobs": 3}, 400, "logprobs"),  # above max_logprobs=2
    ({"logprobs": -1}, 400, "logprobs"),
    ({"stop": 5}, 400, "stop"),
    ({"echo": True, "stream": True}, 400, "echo"),  # echo is answered whole
    ({"suffix": "}"}, 400, "suffix"),
    ({"best_of": 3}, 400, "best_of"),
    # vLLM's field for a client's tensor: never accepted (prompt adapters' embeddings only)
    ({"prompt_embeds": "UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQ"}, 400, "prompt_embeds"),
    ({"prompt_embeds": ["UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQ"]}, 400, "prompt_embeds"),
    ({"prompt_embeds": ""}, 400, "prompt_embeds"),
    ({"stream_options": {"include_usage": "sometimes"}}, 400, "stream_options.include_usage"),
    ({"reasoning_effort": "extreme"}, 400, "reasoning_effort"),
    ({"presence_penalty": 2.5}, 400, "presence_penalty"),
    ({"frequency_penalty": -3}, 400, "frequency_penalty"),
    ({"logit_bias": {"x": 1}}, 400, "logit_bias"),
    ({"logit_bias": {"-5": 1}}, 400, "logit_bias"),
    ({"logit_bias": {"5": 101}}, 400, "logit_bias.5"),
    ({"seed": 2**63}, 400, "seed"),  # the engine carries 64-bit signed seeds
    ({"seed": -2**63 - 1}, 400, "seed"),
    ({"reasoning": {"strategy": "beam", "seed": 2**70}}, 400, "reasoning.seed"),
    ({"model": "gpt-4"}, 404, "model"),
]

BAD_CHATS = [
    ({"messages": []}, 400, "messages"),
    ({"messages": None}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, 400, "messages.0.content"),
    ({"messages": [{"role": "user", "content": ""}]}, 400, "messages"),  # an empty prompt
    ({"max_completion_tokens": 0}, 400, "max_completion_tokens"),
    ({"max_completion_tokens": 100}, 400, "max_completion_tokens"),
    ({"logprobs": True, "top_logprobs": 3}, 400, "top_logprobs"),
    ({"top_logprobs": 1}, 400, "top_logprobs"),  # without logprobs=true
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools"),
    ({"tool_choice": "required"}, 400, "tool_choice"),
    ({"response_format": {"type": "json_object"}}, 400, "response_format"),
    ({"prompt_embeds": "UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQ"}, 400, "prompt_embeds"),
]


def assert_error(response, status: int, param: str | None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"]
    assert error["param"] == param
    return error


@pytest.mark.parametrize(("change", "status", "param"), BAD_COMPLETIONS)
async def test_bad_completion(client, change, status, param):
    assert_error(await client.post("/v1/completions", json={**OK_COMPLETION, **change}),
                 status, param)
    assert (await client.post("/v1/completions", json=OK_COMPLETION)).status_code == 200


@pytest.mark.parametrize(("change", "status", "param"), BAD_CHATS)
async def test_bad_chat(client, engine, change, status, param):
    engine.render_chat = lambda messages: "".join(m["content"] for m in messages)
    assert_error(await client.post("/v1/chat/completions", json={**OK_CHAT, **change}),
                 status, param)
    assert (await client.post("/v1/chat/completions", json=OK_CHAT)).status_code == 200


@pytest.mark.parametrize("seed", [-2**63, 2**63 - 1])
async def test_seeds_at_the_64_bit_bounds_are_served(client, engine, seed):
    response = await client.post("/v1/completions", json={**OK_COMPLETION, "seed": seed})
    assert response.status_code == 200, response.text
    assert engine.requests[-1][2].seed == seed


async def test_known_but_unsupported_fields_are_refused_only_when_they_ask_for_something(
        client, engine):
    error = assert_error(await client.post("/v1/chat/completions", json={
        **OK_CHAT, "response_format": {"type": "json_schema", "json_schema": {}}}),
        400, "response_format")
    assert "not supported" in error["message"] and '{"type": "text"}' in error["message"]
    harmless = {"tools": [], "tool_choice": "none", "response_format": {"type": "text"},
                "echo": False}
    r = await client.post("/v1/chat/completions", json={**OK_CHAT, **harmless})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/completions", json={**OK_COMPLETION, "best_of": 1, "suffix": ""})
    assert r.status_code == 200, r.text


async def test_unknown_model_lists_the_available_ones(client):
    error = assert_error(await client.post("/v1/completions", json={**OK_COMPLETION,
                                                                     "model": "gpt-4"}),
                         404, "model")
    assert error["code"] == "model_not_found" and "demo" in error["message"]


async def test_limits_are_stated(client):
    r = await client.post("/v1/completions", json={**OK_COMPLETION, "max_tokens": 100})
    assert "64" in r.json()["error"]["message"] and "63" in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
async def test_malformed_body(client, body):
    r = await client.post("/v1/completions", content=body,
                          headers={"content-type": "application/json"})
    assert_error(r, 400, None)


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded",
                                          "text/plain"])
async def test_a_json_body_sent_without_its_content_type_is_told_so(client, content_type,
                                                                     engine):
    # what `curl -d '{...}'` without -H sends: the JSON never reaches the model as JSON
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/v1/chat/completions", headers=headers, content=json.dumps(
        {"model": "demo", "messages": [{"role": "user", "content": "x"}]}).encode())
    assert_error(r, 415, None)
    assert r.json()["error"]["message"] == (
        "the body must be JSON sent with Content-Type: application/json (got "
        f"{content_type or 'no Content-Type'})")
    assert engine.requests == []
    # a JSON media type with parameters, or a +json one, is JSON
    for json_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        r = await client.post("/v1/completions", content=json.dumps(OK_COMPLETION).encode(),
                              headers={"content-type": json_type})
        assert r.status_code == 200, r.text


# Python's JSON parser accepts what no field can mean: NaN, and half of a UTF-16 pair.
@pytest.mark.parametrize(("body", "param"), [
    ('"temperature": NaN', "temperature"),
    ('"reasoning": {"strategy": "beam", "verifiers": {"logic": Infinity}}',
     "reasoning.verifiers.logic"),
    ('"stop": ["ok", "\\udc80"]', "stop.1"),
    ('"user": "\\ud83d"', "user"),
])
async def test_json_that_python_accepts_but_no_field_can_mean(client, engine, body, param):
    raw = '{"model": "demo", "messages": [{"role": "user", "content": "x"}], ' + body + "}"
    error = assert_error(await client.post("/v1/chat/completions", content=raw.encode(),
                                           headers={"content-type": "application/json"}),
                         400, param)
    assert "finite" in error["message"] or "surrogate" in error["message"]
    content = '{"model": "demo", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    error = assert_error(await client.post("/v1/chat/completions", content=content.encode(),
                                           headers={"content-type": "application/json"}),
                         400, "messages.0.content")
    assert "surrogate" in error["message"] and not engine.requests


async def test_oversize_body_is_413(client):
    r = await client.post("/v1/completions", json={**OK_COMPLETION, "prompt": "x" * 5000})
    assert_error(r, 413, None)


async def test_oversize_chunked_body_is_413(client):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    assert_error(await client.post("/v1/completions", content=chunks()), 413, None)


async def test_unknown_route_and_method(client):
    assert_error(await client.get("/v1/nothing"), 404, None)
    assert_error(await client.delete("/v1/completions"), 405, None)


async def test_engine_refusal_is_400(client, engine):
    engine.fail_with = InvalidEngineRequest("Token id 999 is out of vocabulary")
    error = assert_error(await client.post("/v1/completions", json=OK_COMPLETION), 400, None)
    assert "out of vocabulary" in error["message"]


async def test_unexpected_failure_is_500_in_shape(client, engine):
    engine.fail_with = RuntimeError("boom")
    error = assert_error(await client.post("/v1/completions", json=OK_COMPLETION), 500, None)
    assert "boom" not in error["message"]  # internals stay in the log


async def test_engine_death_makes_health_503(client, engine):
    assert (await client.get("/health")).status_code == 200
    engine.dead = True
    assert_error(await client.get("/health"), 503, None)
    assert_error(await client.post("/v1/completions", json=OK_COMPLETION), 503, None)


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
async def test_engine_refusal_of_a_stream_gets_a_status(client, engine, path):
    engine.fail_with = InvalidEngineRequest("Token id 999 is out of vocabulary")
    body = OK_COMPLETION if path == "/v1/completions" else OK_CHAT
    assert_error(await client.post(path, json={**body, "stream": True}), 400, None)


async def test_failure_mid_stream_is_an_error_event(client, engine):
    engine.fail_midway = RuntimeError("boom")
    r = await client.post("/v1/completions", json={**OK_COMPLETION, "stream": True})
    assert r.status_code == 200
    *chunks, error = parse_events(r.text)
    assert chunks[0]["choices"][0]["text"] == "1"
    assert error["error"]["type"] == "server_error" and "boom" not in error["error"]["message"]


async def test_an_empty_stop_string_is_a_400_not_a_500_from_the_engine(client):
    # schemathesis found it: vLLM refuses stop=[""] while building its SamplingParams
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x",
                                                   "max_tokens": 2, "stop": ["a", ""]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "stop"
