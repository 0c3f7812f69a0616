"""The swarm strategy through the HTTP API on the scripted engine (server/reasoning/swarm.py):
parts routed to specialists and integrated, `reasoning.swarm` saying who solved what, Self-MoA,
each specialist's calls in a scope of its own, a failing specialist degrading its part, the
client leaving cancelling the whole tree, and the 400s."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from server.settings import Settings
from tests.fakes import FakeEngine
from tests.unit.test_confidence_api import served
from tests.unit.test_disconnect import call_and_disconnect

COMPOSITE = "Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Compute: 17*3+48]"
REPLIES = {"Compute: 2*4-1\n": "2*4=8\n8-1=7\nAnswer: 7",
           "Compute: 17*3+48\n": "17*3=51\n51+48=99\nAnswer: 99",
           "Numbers: 3 7 25 50 Target: 99\n": "50*3=150\n150-25=125\nAnswer: 99"}


def settings(**extra) -> Settings:
    return Settings(default_strategy="greedy", swarm_router="", **extra)


def engine() -> FakeEngine:
    return FakeEngine(max_model_len=512, replies=dict(REPLIES))


def body(question: str = COMPOSITE, **swarm) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": question}],
            "reasoning": {"strategy": "swarm", "verifiers": {"logic": 1},
                          **({"swarm": swarm} if swarm else {})}}


async def test_parts_go_to_their_specialists_and_the_answer_integrates_them():
    fake = engine()
    response = await served(settings(), fake, body())
    assert response.status_code == 200, response.text
    data = response.json()
    assert response.headers["x-reasoning-strategy"] == "swarm"
    text = data["choices"][0]["message"]["content"]
    assert text.splitlines()[0] == "Compute: 2*4-1"
    assert "Numbers: 3 7 25 50 Target: 99\n50*3=150" in text
    swarm = data["reasoning"]["swarm"]
    assert swarm["decomposer"] == "brackets" and swarm["depth"] == 1
    parts = {p["id"]: p for p in swarm["parts"]}
    assert {i: (p["model"], p["answer"]) for i, p in parts.items()} == {
        "0.0": ("arithmetic", "7"), "0.1": ("arithmetic", "99"), "0": ("countdown", "99")}
    assert parts["0"]["depends_on"] == ["0.0", "0.1"]
    assert parts["0"]["route"].startswith("declared skills")
    # logic finds the root's 50*3=150 right and 150-25=125 right: every part scores 1
    assert data["reasoning"]["score"] == 1.0
    # usage counts every part's tokens; each ran on its own adapter
    assert data["usage"]["completion_tokens"] == sum(p["tokens"] for p in swarm["parts"])
    assert sorted(a for a in fake.adapter_of.values()) == ["arithmetic", "arithmetic",
                                                           "countdown"]


async def test_a_route_overrides_the_router_and_each_specialist_has_its_own_scope():
    fake = engine()
    response = await served(settings(), fake, body(routes={"Compute": "demo",
                                                           "Numbers": "arithmetic"}))
    parts = {p["id"]: p for p in response.json()["reasoning"]["swarm"]["parts"]}
    assert [parts[i]["model"] for i in ("0.0", "0.1", "0")] == ["demo", "demo", "arithmetic"]
    assert parts["0"]["route"] == "route 'Numbers'"
    scopes = {fake.adapter_of[r]: s for r, s in fake.scopes.items()}
    assert scopes[None].key.endswith("/swarm/demo")
    assert scopes["arithmetic"].key.endswith("/swarm/arithmetic")
    # one request's scopes: the same request key before the specialist's
    assert scopes[None].key.split("/")[0] == scopes["arithmetic"].key.split("/")[0]
    # the base's two parts share one scope object: the remote engine holds a request's replica
    # by that object (weakly), so a part's own object let it go when that part ended while its
    # sibling ran on (a real fleet split a specialist's calls over both replicas)
    base_scopes = [s for r, s in fake.scopes.items() if fake.adapter_of[r] is None]
    assert len(base_scopes) == 2 and base_scopes[0] is base_scopes[1]


async def test_a_question_that_does_not_decompose_is_one_routed_part():
    fake = engine()
    response = await served(settings(), fake, body("Compute: 17*3+48"))
    data = response.json()
    assert data["choices"][0]["message"]["content"] == REPLIES["Compute: 17*3+48\n"]
    (part,) = data["reasoning"]["swarm"]["parts"]
    assert part["model"] == "arithmetic" and data["reasoning"]["swarm"]["decomposer"] is None


async def test_self_moa_samples_each_named_model_and_votes():
    fake = engine()
    request = body(mode="self_moa", moa_models=["demo", "arithmetic"])
    request["reasoning"]["n_candidates"] = 1  # (the scripted engine numbers samples of n > 1)
    response = await served(settings(), fake, request)
    data = response.json()
    assert response.status_code == 200, response.text
    parts = {p["id"]: p for p in data["reasoning"]["swarm"]["parts"]}
    assert parts["0"]["strategy"] == "self_moa" and parts["0"]["answer"] == "99"
    # every part sampled both models (the root too, though the router would pick countdown)
    assert list(fake.adapter_of.values()).count("arithmetic") == 3
    assert list(fake.adapter_of.values()).count(None) == 3
    assert "countdown" not in fake.adapter_of.values()


@dataclasses.dataclass
class DownAdapter(FakeEngine):
    down: str = "countdown"

    async def generate(self, prompt, params, request_id, adapter=None):
        if adapter == self.down:
            raise RuntimeError("the countdown specialist is down")
        async for out in super().generate(prompt, params, request_id, adapter):
            yield out


async def test_a_failing_specialist_degrades_its_part_to_the_base():
    fake = DownAdapter(max_model_len=512, replies=dict(REPLIES))
    response = await served(settings(), fake, body())
    assert response.status_code == 200, response.text
    parts = {p["id"]: p for p in response.json()["reasoning"]["swarm"]["parts"]}
    assert parts["0"]["model"] == "demo" and parts["0"]["answer"] == "99"
    assert "countdown failed (RuntimeError): the base answered" in parts["0"]["route"]
    assert parts["0.0"]["model"] == "arithmetic"  # the others kept their specialists


async def test_the_client_leaving_cancels_the_whole_swarm():
    from server.app import create_app

    fake = engine()
    fake.hold = asyncio.Event()  # every generation stalls after one token
    app = create_app(settings(), fake)
    async with app.router.lifespan_context(app):
        await call_and_disconnect(app, body(), path="/v1/chat/completions")
        await asyncio.sleep(0.05)
    # both concurrent parts had started; both were aborted, and the root never started
    assert len(fake.requests) == 2
    assert sorted(fake.aborted) == sorted(r for r, _, _ in fake.requests)
    assert not fake.running


@pytest.mark.parametrize("swarm, extra, param, says", [
    ({"specialists": ["nope"]}, {}, "reasoning.swarm.specialists", "does not serve"),
    ({"routes": {"Compute": "nope"}}, {}, "reasoning.swarm.routes", "does not serve"),
    ({"moa_models": ["nope"]}, {}, "reasoning.swarm.moa_models", "does not serve"),
    ({"max_depth": 9}, {}, "reasoning.swarm.max_depth", "above this server's limit of 2"),
    ({"decomposer": "nope"}, {}, "reasoning.swarm.decomposer", "unknown decomposer"),
    ({}, {"question": "Compute: [[[Compute: 1+1]+1]+1]+1"}, "reasoning.swarm.max_depth",
     "3 levels deep, over the limit of 2"),
    ({"max_depth": 0}, {}, "reasoning.swarm.max_depth", "1 levels deep, over the limit of 0"),
    ({}, {"question": "Compute: [1+2"}, "messages", "never closed"),
    ({}, {"question": "[" * 100 + "x" + "]" * 100}, "messages", "100 levels deep"),
])
async def test_bad_swarms_are_400s_that_say_what_to_change(swarm, extra, param, says):
    fake = engine()
    response = await served(settings(), fake, body(extra.get("question", COMPOSITE), **swarm))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"]
    assert fake.requests == []  # refused before any work


async def test_a_swarm_answers_once():
    response = await served(settings(), engine(), {**body(), "n": 2})
    assert response.status_code == 400 and response.json()["error"]["param"] == "n"


async def test_swarm_options_need_the_swarm_strategy():
    data = body()
    data["reasoning"] = {"strategy": "beam", "swarm": {"mode": "self_moa"}}
    response = await served(settings(), engine(), data)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "reasoning.swarm"


async def test_a_key_may_use_only_its_allowed_specialists():
    allowed = settings(api_keys={"team": "k1"}, swarm_allowed={"team": ["demo", "arithmetic"]})
    from server.app import create_app
    import httpx

    fake = engine()
    app = create_app(allowed, fake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers={"authorization": "Bearer k1"}) as client:
            refused = await client.post("/v1/chat/completions",
                                        json=body(specialists=["countdown"]))
            fine = await client.post("/v1/chat/completions", json=body())
    assert refused.status_code == 400
    assert "may not use in a swarm; allowed: ['arithmetic', 'demo']" in \
        refused.json()["error"]["message"]
    # by default the key's parts go only to the models it may use
    models = {p["model"] for p in fine.json()["reasoning"]["swarm"]["parts"]}
    assert models == {"arithmetic", "demo"}  # the root, alike to no declaration: the base


async def test_a_streamed_swarm_sends_the_integrated_answer():
    from tests.sse import parse_events

    plain = (await served(settings(), engine(), body())).json()
    response = await served(settings(), engine(), {**body(), "stream": True})
    assert response.status_code == 200
    events = parse_events(response.text)
    content = "".join(e["choices"][0]["delta"].get("content") or ""
                      for e in events if e.get("choices"))
    assert content == plain["choices"][0]["message"]["content"]
    assert events[-1]["reasoning"]["swarm"]["parts"][-1]["model"] == "countdown"
