"""The swarm strategy on the real engine (the demo model and its arithmetic, countdown and
physics adapters, from the resolver root): decomposition, routing (a route, the learned router)
and integration; the client leaving cancels the whole tree of engine requests."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration.test_disconnect import engine_busy, wait_until

pytestmark = pytest.mark.slow

# easy parts (the base gets 1-2 operations right ~97% of the time): 3+4 = 7, 5*3+2 = 17; the
# countdown part, resolved: Numbers: 2 7 10 Target: 17 (10+7)
COMPOSITE = "Numbers: 2 [Compute: 3+4] 10 Target: [Compute: 5*3+2]"
ORACLE = {"Compute": "arithmetic", "Numbers": "countdown", "Physics": "physics"}
# a physics target (d = v*t = 20 m), which only the physics adapter solves; resolved:
# Numbers: 2 7 10 Target: 20 (10*2)
PHYSICS_COMPOSITE = "Numbers: 2 [Compute: 3+4] 10 Target: [Physics: v=5 m/s, t=4 s. Find d in m.]"


def swarm_request(swarm: dict, question: str = COMPOSITE, **reasoning) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": question}],
            "max_tokens": 128, "temperature": 0,
            "reasoning": {"strategy": "swarm", "verifiers": {"logic": 1}, "swarm": swarm,
                          **reasoning}}


def test_parts_are_decomposed_routed_solved_and_integrated(server):
    response = httpx.post(f"{server.url}/v1/chat/completions", timeout=300,
                          json=swarm_request({"routes": ORACLE}))
    assert response.status_code == 200, response.text
    body = response.json()
    swarm = body["reasoning"]["swarm"]
    parts = {p["id"]: p for p in swarm["parts"]}
    assert [p["id"] for p in swarm["parts"]] == ["0.0", "0.1", "0"]
    assert {i: p["model"] for i, p in parts.items()} == {"0.0": "arithmetic",
                                                         "0.1": "arithmetic", "0": "countdown"}
    # the countdown part was asked with the arithmetic parts' answers in their places
    assert parts["0"]["question"] == \
        f"Numbers: 2 {parts['0.0']['answer']} 10 Target: {parts['0.1']['answer']}"
    text = body["choices"][0]["message"]["content"]
    assert text.startswith("Compute: 3+4\n")
    assert f"\n{parts['0']['question']}\n" in text  # the countdown block comes last
    assert body["usage"]["completion_tokens"] == sum(p["tokens"] for p in swarm["parts"])
    assert body["reasoning"]["engine_calls"] == sum(p["engine_calls"] for p in swarm["parts"])
    if server.trained_demo_model:
        assert (parts["0.0"]["answer"], parts["0.1"]["answer"]) == ("7", "17")


def test_the_learned_router_sends_each_family_to_a_model_that_solves_it(server):
    response = httpx.post(f"{server.url}/v1/chat/completions", timeout=300,
                          json=swarm_request({"routing": "learned"}))
    assert response.status_code == 200, response.text
    parts = {p["id"]: p for p in response.json()["reasoning"]["swarm"]["parts"]}
    for part in parts.values():
        assert part["route"].startswith("learned router: P(right)"), part
        assert part["model"] in ("demo", "arithmetic", "countdown", "physics")
    if server.trained_demo_model:  # the committed router was measured on this model
        assert parts["0"]["model"] == "countdown"
        assert parts["0.1"]["model"] != "countdown"


@pytest.mark.parametrize("swarm", [{"routes": ORACLE}, {"routing": "learned"}])
def test_a_physics_part_goes_to_the_physics_adapter_and_its_number_fills_the_slot(server, swarm):
    response = httpx.post(f"{server.url}/v1/chat/completions", timeout=300,
                          json=swarm_request(swarm, PHYSICS_COMPOSITE))
    assert response.status_code == 200, response.text
    body = response.json()
    parts = {p["id"]: p for p in body["reasoning"]["swarm"]["parts"]}
    stated = parts["0.1"]["answer"] or ""
    # the countdown part reads the physics answer's number, not its unit
    assert parts["0"]["question"] == \
        f"Numbers: 2 {parts['0.0']['answer']} 10 Target: {stated.split(' ')[0]}"
    assert f"{PHYSICS_COMPOSITE.split('[')[-1].rstrip(']')}\n" in \
        body["choices"][0]["message"]["content"]  # the physics block, under its question
    if "routes" in swarm:
        assert parts["0.1"]["model"] == "physics" and parts["0"]["model"] == "countdown"
    if server.trained_demo_model:  # the committed adapters and router
        assert parts["0.1"]["model"] == "physics"
        assert stated == "20 m"
        assert parts["0"]["question"] == "Numbers: 2 7 10 Target: 20"


async def test_a_client_that_leaves_cancels_the_whole_swarm(server):
    # every part a long search (test_disconnect's: mcts, 64 rollout simulations, the PRM
    # keeping every score below stop_score 1.0): both arithmetic parts run when the client
    # leaves, and the countdown part never starts
    long = swarm_request({"routes": ORACLE, "strategy": "mcts"}, simulations=64,
                         stop_score=1.0, evaluation="rollout",
                         verifiers={"logic": 1, "syntax": 1, "prm": 1})
    long["temperature"] = 1.0
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        request = asyncio.create_task(http.post("/v1/chat/completions", json=long))
        await wait_until(lambda: server.metric("vllm:num_requests_running") > 0, timeout_s=30)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    await wait_until(lambda: engine_busy(server) == 0, timeout_s=5)
