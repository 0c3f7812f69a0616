"""OpenAI's and OpenRouter's `reasoning: {"effort", "max_tokens"}` on chat and completions
requests (server/reasoning/aliases.py), on the scripted step engine."""

from __future__ import annotations

import pytest

from tests.unit.test_reasoning_api import chat, engine, settings  # noqa: F401  (fixtures)


@pytest.mark.parametrize(("effort", "strategy"), [("low", "greedy"), ("medium", "beam"),
                                                  ("high", "mcts"), ("xhigh", "mcts")])
async def test_reasoning_effort_inside_reasoning_routes_as_reasoning_effort(client, effort,
                                                                            strategy):
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"effort": effort}))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == strategy


async def test_completions_take_the_same_keys(client):
    r = await client.post("/v1/completions", json={
        "model": "demo", "prompt": "Compute: 2+3*4\n", "max_tokens": 64,
        "reasoning": {"effort": "medium"}})
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == "beam"


async def test_max_tokens_is_the_search_budget(client):
    tight = await client.post("/v1/chat/completions", json=chat(
        reasoning={"strategy": "beam", "max_tokens": 6}))
    assert tight.status_code == 200, tight.text
    same = await client.post("/v1/chat/completions", json=chat(
        reasoning={"strategy": "beam", "budget_tokens": 6}))
    loose = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "beam"}))
    # the alias spends what budget_tokens would, and less than no budget
    assert tight.json()["usage"] == same.json()["usage"]
    assert tight.json()["reasoning"]["stopped_by"] == same.json()["reasoning"]["stopped_by"]
    assert tight.json()["usage"]["completion_tokens"] < loose.json()["usage"]["completion_tokens"]


async def test_effort_with_deliberate_options_keeps_them(client):
    r = await client.post("/v1/chat/completions", json=chat(
        reasoning={"effort": "medium", "verifiers": {"logic": 1}, "max_tokens": 500}))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == "beam"
    # the beam's verifier found the slip greedy makes
    assert r.json()["choices"][0]["message"]["content"].endswith("Answer: 14")


@pytest.mark.parametrize(("body", "param"), [
    ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
    ({"reasoning": {"effort": "low"}, "reasoning_effort": "high"}, "reasoning.effort"),
    ({"reasoning": {"max_tokens": 5, "budget_tokens": 9}}, "reasoning.max_tokens"),
    ({"reasoning": {"max_tokens": 0}}, "reasoning.budget_tokens"),
    ({"reasoning": {"effort": "low", "exclude": True}}, "reasoning.exclude"),
])
async def test_bad_or_conflicting_aliases_are_400s_naming_the_key(client, body, param):
    r = await client.post("/v1/chat/completions", json=chat(**body))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert "{kind}" not in r.json()["error"]["message"]  # placeholders filled in
    assert "!r}" not in r.json()["error"]["message"]


async def test_the_same_effort_twice_is_accepted(client):
    r = await client.post("/v1/chat/completions", json=chat(
        reasoning={"effort": "medium"}, reasoning_effort="medium"))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == "beam"
