from __future__ import annotations

from tests.sse import parse_events

REPLY = "1+1=2\nAnswer: 2"
MESSAGES = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "Compute: 1+1"}]


async def test_chat_completion(client, engine):
    r = await client.post("/v1/chat/completions", json={"model": "demo", "messages": MESSAGES,
                                                         "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPLY}
    assert body["choices"][0]["finish_reason"] == "stop"
    # The fake's template keeps user turns: "Compute: 1+1\n" is 13 tokens.
    assert engine.requests[-1][1] == [ord(c) for c in "Compute: 1+1\n"]
    assert body["usage"] == {"prompt_tokens": 13, "completion_tokens": len(REPLY),
                             "total_tokens": 13 + len(REPLY),
                             "completion_tokens_details": {"reasoning_tokens": 0}}


async def test_content_parts_are_joined(client, engine):
    parts = [{"type": "text", "text": "Compute: "}, {"type": "text", "text": "1+1"}]
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": [{"role": "user", "content": parts}]})
    assert r.status_code == 200, r.text
    assert engine.requests[-1][1] == [ord(c) for c in "Compute: 1+1\n"]


async def test_max_completion_tokens_wins_over_max_tokens(client, engine):
    await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": MESSAGES, "max_tokens": 9, "max_completion_tokens": 4})
    assert engine.requests[-1][2].max_tokens == 4


async def test_penalties_and_logit_bias_reach_the_engine(client, engine):
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": MESSAGES, "presence_penalty": 0.5,
        "frequency_penalty": -0.25, "logit_bias": {"7": -100, "12": 3.5}})
    assert r.status_code == 200, r.text
    params = engine.requests[-1][2]
    assert (params.presence_penalty, params.frequency_penalty) == (0.5, -0.25)
    assert dict(params.logit_bias) == {7: -100.0, 12: 3.5}


async def test_logprobs_and_top_logprobs(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": MESSAGES, "max_tokens": 2, "logprobs": True,
        "top_logprobs": 2})
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in content] == ["1", "+"]
    assert content[0]["bytes"] == [ord("1")]
    assert [t["token"] for t in content[0]["top_logprobs"]] == ["1", "?"]


async def test_stream_format(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": MESSAGES, "n": 2, "temperature": 1.0, "stream": True,
        "stream_options": {"include_usage": True}})
    first, *deltas, last = parse_events(r.text)
    assert all(c["object"] == "chat.completion.chunk" for c in [first, *deltas, last])
    assert [c["delta"] for c in first["choices"]] == [{"role": "assistant", "content": ""}] * 2
    for index in (0, 1):
        mine = [c["choices"][0] for c in deltas if c["choices"][0]["index"] == index]
        assert "".join(c["delta"]["content"] for c in mine) == REPLY + str(index)
        assert [c["finish_reason"] for c in mine][-1] == "stop"
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 2 * (len(REPLY) + 1)
