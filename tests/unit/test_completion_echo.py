"""`echo` on /v1/completions: the prompt before each choice, with its tokens' logprobs (the
first None), and max_tokens 0 to score the prompt alone, as lm-eval's loglikelihood asks."""

from __future__ import annotations

REPLY = "1+1=2\nAnswer: 2"


def completion(**extra) -> dict:
    return {"model": "demo", "prompt": "abc", "temperature": 0, **extra}


async def test_echo_puts_the_prompt_before_the_text(client):
    body = (await client.post("/v1/completions", json=completion(echo=True,
                                                                  max_tokens=3))).json()
    assert body["choices"][0]["text"] == "abc" + REPLY[:3]
    assert body["choices"][0]["logprobs"] is None
    assert body["usage"]["completion_tokens"] == 3


async def test_echo_with_logprobs_covers_prompt_then_generated_tokens(client, engine):
    r = await client.post("/v1/completions", json=completion(echo=True, max_tokens=2,
                                                              logprobs=1))
    assert r.status_code == 200, r.text
    logprobs = r.json()["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["a", "b", "c", "1", "+"]
    assert logprobs["token_logprobs"] == [None, -0.5, -0.5, -0.25, -0.25]
    assert logprobs["top_logprobs"] == [None, {"b": -0.5}, {"c": -0.5}, {"1": -0.25},
                                        {"+": -0.25}]
    assert logprobs["text_offset"] == [0, 1, 2, 3, 4]
    params = engine.requests[-1][2]
    assert params.prompt_logprobs == 1 and params.name_prompt_tokens  # asked for the echo
    assert r.json()["choices"][0]["prompt_logprobs"] is None  # not asked for by the client


async def test_max_tokens_zero_scores_the_prompt_alone(client, engine):
    r = await client.post("/v1/completions", json=completion(
        prompt=["abc", "xy"], echo=True, max_tokens=0, logprobs=2))
    assert r.status_code == 200, r.text
    first, second = r.json()["choices"]
    assert (first["text"], second["text"]) == ("abc", "xy")
    assert first["logprobs"]["token_logprobs"] == [None, -0.5, -0.5]
    assert first["logprobs"]["top_logprobs"][1] == {"b": -0.5, "?": -1.5}
    assert second["logprobs"]["tokens"] == ["x", "y"]
    assert first["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 0
    assert {params.max_tokens for _, _, params in engine.requests} == {1}  # then dropped


async def test_prompt_tokens_are_named_only_for_an_echo(client, engine):
    # a PRM-style scoring request (prompt_logprobs, no echo) does not pay for naming them
    await client.post("/v1/completions", json=completion(max_tokens=1, prompt_logprobs=1))
    await client.post("/v1/completions", json=completion(echo=True, max_tokens=1))
    assert [params.name_prompt_tokens for _, _, params in engine.requests] == [False, False]


async def test_max_tokens_zero_without_echo_says_what_it_is_for(client, engine):
    r = await client.post("/v1/completions", json=completion(max_tokens=0))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "max_tokens"
    assert "echo: true" in error["message"]
    assert engine.requests == []


async def test_echo_is_a_single_pass_and_not_streamed(client):
    r = await client.post("/v1/completions", json=completion(
        echo=True, max_tokens=2, reasoning={"strategy": "beam"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "echo"
    r = await client.post("/v1/completions", json=completion(echo=True, max_tokens=2,
                                                              stream=True))
    assert r.status_code == 400 and r.json()["error"]["param"] == "echo"
    assert "drop stream" in r.json()["error"]["message"]


async def test_chat_still_refuses_echo(client):
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": [{"role": "user", "content": "x"}], "echo": True})
    assert r.status_code == 400 and r.json()["error"]["param"] == "echo"
