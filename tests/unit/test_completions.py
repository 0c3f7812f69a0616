from __future__ import annotations

from tests.sse import parse_events

REPLY = "1+1=2\nAnswer: 2"


async def test_completion_text_and_usage(client, engine):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "Compute: 1+1\n",
                                                    "max_tokens": 40, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["model"] == "demo"
    assert body["id"].startswith("cmpl-")
    assert body["choices"] == [{"index": 0, "text": REPLY, "logprobs": None,
                                "finish_reason": "stop", "prompt_logprobs": None}]
    assert body["usage"] == {"prompt_tokens": 13, "completion_tokens": len(REPLY),
                             "total_tokens": 13 + len(REPLY),
                             "completion_tokens_details": {"reasoning_tokens": 0}}


async def test_usage_counts_every_choice(client, engine):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "n": 3,
                                                    "temperature": 0.7, "max_tokens": 40})
    choices = r.json()["choices"]
    assert [c["text"] for c in choices] == [REPLY + "0", REPLY + "1", REPLY + "2"]
    assert r.json()["usage"]["completion_tokens"] == 3 * (len(REPLY) + 1)


async def test_sampling_fields_reach_the_engine(client, engine):
    await client.post("/v1/completions", json={
        "model": "demo", "prompt": [72, 105], "max_tokens": 5, "temperature": 0.5, "top_p": 0.9,
        "n": 2, "stop": "\n", "seed": 7, "user": "u1"})
    _, prompt, params = engine.requests[-1]
    assert prompt == [72, 105]
    assert (params.max_tokens, params.temperature, params.top_p, params.n, params.stop,
            params.seed) == (5, 0.5, 0.9, 2, ("\n",), 7)


async def test_max_tokens_defaults_to_the_rest_of_the_context(client, engine):
    await client.post("/v1/completions", json={"model": "demo", "prompt": "abcd"})
    assert engine.requests[-1][2].max_tokens == engine.max_model_len - 4


async def test_length_finish_reason(client):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x",
                                                    "max_tokens": 3})
    assert r.json()["choices"][0] == {"index": 0, "text": REPLY[:3], "logprobs": None,
                                      "finish_reason": "length", "prompt_logprobs": None}


async def test_logprobs_shape(client):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x",
                                                    "max_tokens": 3, "logprobs": 2})
    logprobs = r.json()["choices"][0]["logprobs"]
    assert logprobs["tokens"] == list(REPLY[:3])
    assert logprobs["token_logprobs"] == [-0.25] * 3
    assert logprobs["top_logprobs"][0] == {"1": -0.25, "?": -1.5}
    assert logprobs["text_offset"] == [0, 1, 2]


async def test_stream_chunks_and_usage(client):
    r = await client.post("/v1/completions", json={
        "model": "demo", "prompt": "Compute: 1+1\n", "max_tokens": 40, "stream": True,
        "stream_options": {"include_usage": True}})
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = parse_events(r.text)
    *deltas, last = chunks
    assert "".join(c["choices"][0]["text"] for c in deltas) == REPLY
    assert all(c["object"] == "text_completion" and c["usage"] is None for c in deltas)
    assert [c["choices"][0]["finish_reason"] for c in deltas][-2:] == [None, "stop"]
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 13, "completion_tokens": len(REPLY),
                             "total_tokens": 13 + len(REPLY),
                             "completion_tokens_details": {"reasoning_tokens": 0}}


async def test_stream_without_usage_has_no_usage_field(client):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x",
                                                    "max_tokens": 2, "stream": True})
    chunks = parse_events(r.text)
    assert all("usage" not in c for c in chunks)
    # two tokens, then the closing chunk with the reasoning object only
    assert [c["choices"] for c in chunks][-1] == [] and len(chunks) == 3
    assert chunks[-1]["reasoning"]["strategy"] == "greedy"


async def test_reasoning_extensions_and_unknown_fields_are_accepted(client):
    r = await client.post("/v1/completions", json={
        "model": "demo", "prompt": "x", "max_tokens": 2, "reasoning_effort": "low",
        "reasoning": {"strategy": "greedy"}, "some_vendor_field": 1})
    assert r.status_code == 200, r.text


async def test_only_streaming_requests_ask_the_engine_for_per_token_deltas(client, engine):
    body = {"model": "demo", "prompt": "Compute: 1+1\n", "max_tokens": 5, "temperature": 0}
    assert (await client.post("/v1/completions", json=body)).status_code == 200
    assert (await client.post("/v1/completions", json={**body, "stream": True})).status_code == 200
    assert [params.final_only for _, _, params in engine.requests] == [True, False]
