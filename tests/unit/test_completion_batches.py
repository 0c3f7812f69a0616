"""A batch of prompts in one /v1/completions request (server/openai/completions/batch.py)."""

from __future__ import annotations

import asyncio

import pytest

from server.settings import Settings
from tests.sse import parse_events

REPLIES = {"one": "A", "two": "BB", "three": "CCC"}


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, max_logprobs=2, max_body_bytes=4096, default_strategy="greedy",
                    max_prompts=3, batch_concurrency=2)


def batch(prompt, **extra) -> dict:
    return {"model": "demo", "prompt": prompt, "max_tokens": 10, "temperature": 0, **extra}


async def test_each_prompts_choices_sit_at_its_own_indexes(client, engine):
    engine.replies.update(REPLIES)
    r = await client.post("/v1/completions", json=batch(["one", "two", "three"], n=2,
                                                        temperature=0.7))
    assert r.status_code == 200, r.text
    body = r.json()
    # prompt i's n choices at i*n .. i*n+n-1, as OpenAI and vLLM order them
    assert [(c["index"], c["text"]) for c in body["choices"]] == [
        (0, "A0"), (1, "A1"), (2, "BB0"), (3, "BB1"), (4, "CCC0"), (5, "CCC1")]
    assert body["usage"]["prompt_tokens"] == len("one") + len("two") + len("three")
    assert body["usage"]["completion_tokens"] == 2 * 2 + 2 * 3 + 2 * 4
    assert body["usage"]["total_tokens"] == 11 + 18
    assert [reasoning["strategy"] for reasoning in body["reasoning"]] == ["greedy"] * 3
    assert r.headers["x-reasoning-strategy"] == "greedy, greedy, greedy"
    assert sorted(ids for _, ids, _ in engine.requests) == sorted(
        [ord(c) for c in p] for p in ("one", "two", "three"))


async def test_a_batch_of_token_id_prompts(client, engine):
    engine.replies.update(REPLIES)
    r = await client.post("/v1/completions", json=batch([[111, 110, 101], [116, 119, 111]]))
    assert [c["text"] for c in r.json()["choices"]] == ["A", "BB"]


async def test_a_batch_of_one_is_that_prompt(client, engine):
    engine.replies.update(REPLIES)
    body = (await client.post("/v1/completions", json=batch(["two"]))).json()
    assert body["choices"][0]["text"] == "BB"
    assert body["reasoning"]["strategy"] == "greedy"  # an object, as for a single prompt


async def test_a_batch_runs_at_most_its_concurrency_at_once(client, engine):
    engine.hold = asyncio.Event()  # each generation waits after its first token
    post = asyncio.create_task(client.post("/v1/completions", json=batch(["a", "b", "c"])))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(engine.running) == 2:
            break
    await asyncio.sleep(0.05)
    assert len(engine.running) == 2 and len(engine.requests) == 2  # the third waits its turn
    engine.hold.set()
    r = await post
    assert r.status_code == 200 and len(r.json()["choices"]) == 3
    assert len(engine.requests) == 3


async def test_a_streamed_batch_past_its_concurrency_streams_every_prompt(client, engine):
    engine.replies.update(REPLIES)
    r = await client.post("/v1/completions", json=batch(["one", "two", "three"], stream=True))
    assert r.status_code == 200, r.text
    chunks = parse_events(r.text)
    text = {}
    for chunk in chunks[:-1]:
        for choice in chunk["choices"]:
            text[choice["index"]] = text.get(choice["index"], "") + choice["text"]
    assert text == {0: "A", 1: "BB", 2: "CCC"}
    assert [reasoning["strategy"] for reasoning in chunks[-1]["reasoning"]] == ["greedy"] * 3
    assert "usage" not in chunks[-1]  # not asked for


async def test_streamed_batch_is_one_stream_with_one_closing_chunk(client, engine):
    engine.replies.update(REPLIES)
    r = await client.post("/v1/completions", json=batch(
        ["one", "three"], stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200, r.text
    assert "x-reasoning-strategy" not in r.headers  # decided as the stream runs
    chunks = parse_events(r.text)
    assert len({chunk["id"] for chunk in chunks}) == 1
    text = {}
    for chunk in chunks[:-1]:
        for choice in chunk["choices"]:
            text[choice["index"]] = text.get(choice["index"], "") + choice["text"]
        assert chunk["usage"] is None
    assert text == {0: "A", 1: "CCC"}
    closing = chunks[-1]
    assert closing["choices"] == []
    assert closing["usage"]["prompt_tokens"] == 3 + 5
    assert closing["usage"]["completion_tokens"] == 1 + 3
    assert [reasoning["strategy"] for reasoning in closing["reasoning"]] == ["greedy", "greedy"]


async def test_a_bad_prompt_in_a_batch_is_named_and_nothing_runs(client, engine):
    r = await client.post("/v1/completions", json=batch(["one", "", "three"]))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "prompt"
    assert error["message"] == "prompt 1 of the batch: the prompt is empty"
    r = await client.post("/v1/completions", json=batch(["one", "x" * 80]))
    assert r.status_code == 400 and "prompt 1 of the batch" in r.json()["error"]["message"]
    assert engine.requests == []


async def test_a_batch_over_the_limit_says_how_to_split(client, engine):
    r = await client.post("/v1/completions", json=batch(["a", "b", "c", "d"]))
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "the batch has 4 prompts; this server takes at most 3 in one request (--max-prompts): "
        "split it")
    assert engine.requests == []


@pytest.mark.parametrize("prompt", [["one", [1, 2]], [[1], "a"], [["a"]], [True], [[1.5]], 5,
                                    None])
async def test_a_prompt_of_no_known_shape_is_refused_with_the_shapes(client, prompt, engine):
    r = await client.post("/v1/completions", json=batch(prompt))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"
    assert r.json()["error"]["message"] == (
        "prompt: send a string, a list of token ids (integers), or a batch of either (a list of "
        "strings, or a list of token-id lists), not a mix")
    assert engine.requests == []


async def test_a_failing_prompt_fails_the_batch_aborts_the_rest_and_the_server_serves_on(
        client, engine):
    single = await client.post("/v1/completions", json=batch("one"))
    engine.fail_midway = RuntimeError("boom")
    r = await client.post("/v1/completions", json=batch(["one", "two"]))
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert engine.running == set()
    assert len(engine.aborted) == 2
    engine.fail_midway = None
    r = await client.post("/v1/completions", json=batch(["one", "two"]))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] == single.json()["choices"][0]["text"]


async def test_a_prompt_failing_while_another_runs_aborts_the_other(client, engine, monkeypatch):
    engine.hold = asyncio.Event()  # "one" stops after its first token until released
    generate = engine.generate

    def failing_on_two(prompt, params, request_id, adapter=None):
        if engine.decode(prompt) == "two":
            raise RuntimeError("boom")
        return generate(prompt, params, request_id, adapter)

    monkeypatch.setattr(engine, "generate", failing_on_two)
    r = await client.post("/v1/completions", json=batch(["one", "two"]))
    assert r.status_code == 500
    assert engine.running == set() and len(engine.aborted) == 1  # "one" was stopped, not left


async def test_a_streamed_batch_says_a_later_prompts_failure_in_band(client, engine,
                                                                      monkeypatch):
    generate = engine.generate

    def failing_on(bad):
        def fake(prompt, params, request_id, adapter=None):
            if engine.decode(prompt) == bad:
                raise RuntimeError("boom")
            return generate(prompt, params, request_id, adapter)
        return fake

    monkeypatch.setattr(engine, "generate", failing_on("two"))
    r = await client.post("/v1/completions", json=batch(["one", "two", "three"], stream=True))
    assert r.status_code == 200  # the stream had started with the first prompt
    assert parse_events(r.text)[-1]["error"]["type"] == "server_error"
    assert engine.running == set()
    # the first prompt is admitted before the response: its failure is the status code
    monkeypatch.setattr(engine, "generate", failing_on("one"))
    r = await client.post("/v1/completions", json=batch(["one", "two"], stream=True))
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
