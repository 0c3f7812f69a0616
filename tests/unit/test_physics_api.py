"""The physics verifiers through the API: POST /v1/verify, per-request `physics` options and
their 400s, and `reasoning.symbolic_steps` in a chat completion's search."""

from __future__ import annotations

import pytest

from benchmarks.harness.servers import install_verifier_plugins
from server.settings import Settings
from tests.search_fakes import StepEngine

QUESTION = "Physics: m=2000 g, a=2 m/s^2. Find F in N."
GOOD = "m=2000 g=2 kg\nF=m*a=2*2=4 N\nAnswer: 4 N"
WRONG_DIMENSION = "m=2000 g=2 kg\nF=m+a=2+2=4 N\nAnswer: 4 N"
NEAR = "m=2000 g=2 kg\nF=m*a=2*2=4.1 N\nAnswer: 4.1 N"
PLUGINS = {"units": "verifiers.physics.units:UnitsVerifier",
           "physics": "verifiers.physics.laws:PhysicsVerifier"}


@pytest.fixture(autouse=True)
def physics_plugins(tmp_path, monkeypatch):
    """The plugins registered by entry point, as pyproject.toml registers them, for this test's
    app only (the installed package may predate them)."""
    monkeypatch.syspath_prepend(str(install_verifier_plugins(tmp_path, "physics-test", PLUGINS)))


@pytest.fixture
def engine() -> StepEngine:
    script = {(): ["m=2000 g=3 kg"], ("m=2000 g=3 kg",): ["F=m*a=3*2=6 N"],
              ("m=2000 g=3 kg", "F=m*a=3*2=6 N"): ["Answer: 6 N"],
              ("m=2000 g=2 kg",): ["F=m*a=2*2=5 N"],
              ("m=2000 g=2 kg", "F=m*a=2*2=5 N"): ["Answer: 5 N"],
              ("m=2000 g=2 kg", "F=m*a=2*2=4 N"): ["Answer: 5 N"]}
    return StepEngine(prompt=QUESTION + "\n", script=script)  # the fake chat template's


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, default_strategy="greedy")


async def verify(client, completion, **body):
    return await client.post("/v1/verify", json={
        "prompt": QUESTION, "completion": completion,
        "verifiers": {"units": 1, "physics": 1}, **body})


async def test_verify_scores_each_step_with_units_and_physics(client):
    good = (await verify(client, GOOD)).json()
    assert good["score"] == 1.0 and good["verifier_scores"] == {"units": 1.0, "physics": 1.0}
    wrong = (await verify(client, WRONG_DIMENSION)).json()
    assert [s["scores"] for s in wrong["steps"]] == [
        {"units": 1.0, "physics": 1.0}, {"units": 0.0, "physics": 0.0},
        {"units": 1.0, "physics": 1.0}]
    assert wrong["score"] == 0.0


async def test_verify_takes_the_tolerance_per_request(client):
    strict = (await verify(client, NEAR)).json()
    assert 0 < strict["verifier_scores"]["units"] < 1
    loose = (await verify(client, NEAR, physics={"tolerance": 0.05})).json()
    assert loose["verifier_scores"]["units"] == 1.0
    only_circuits = (await verify(client, "m=2000 g=2 kg\nF=m/a=2/2=1 N",
                                  physics={"rules": ["circuits"]})).json()
    assert only_circuits["verifier_scores"]["physics"] == 1.0  # F=m/a is no circuit formula
    newton = (await verify(client, "m=2000 g=2 kg\nF=m/a=2/2=1 N",
                           physics={"rules": ["newton"]})).json()
    assert newton["verifier_scores"]["physics"] == 0.0


@pytest.mark.parametrize("physics, param, words", [
    ({"tolerance": 0}, "physics.tolerance", "greater than 0"),
    ({"tolerance": 1.5}, "physics.tolerance", "less than or equal to 1"),
    ({"unit_system": "furlong"}, "physics.unit_system", "unknown unit system 'furlong'"),
    ({"rules": ["alchemy"]}, "physics.rules", "unknown physics rule set(s) ['alchemy']"),
    ({"rules": []}, "physics.rules", "name at least one"),
    ({"speed": 3}, "physics.speed", "Extra inputs"),
])
async def test_bad_physics_options_are_400s_that_say_what_to_change(client, physics, param,
                                                                    words):
    r = await verify(client, GOOD, physics=physics)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": [{"role": "user", "content": QUESTION}],
        "reasoning": {"strategy": "beam", "physics": physics}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == f"reasoning.{param}"


async def test_a_unreadable_completion_is_neutral_not_an_error(client):
    r = await verify(client, "I think it is about four newtons\n=\nso")
    assert r.status_code == 200 and r.json()["score"] == 1.0
    # but an Answer line stating no quantity, where one in newtons is asked, is wrong
    r = await verify(client, "I think it is about four newtons\n=\nAnswer: ???")
    assert r.status_code == 200 and r.json()["score"] == 0.0


async def chat(client, **reasoning):
    r = await client.post("/v1/chat/completions", json={
        "model": "demo", "messages": [{"role": "user", "content": QUESTION}],
        "reasoning": {"strategy": "beam", "beam_width": 1, "n_candidates": 1,
                      "verifiers": {"units": 1, "physics": 1}, **reasoning}})
    assert r.status_code == 200, r.text
    return r.json()


async def test_symbolic_steps_in_a_chat_search_and_what_the_response_reports(client):
    plain = await chat(client)
    assert plain["choices"][0]["message"]["content"].endswith("Answer: 6 N")
    assert "symbolic_steps" not in plain["reasoning"]
    fused = await chat(client, symbolic_steps=True)
    assert fused["choices"][0]["message"]["content"] == GOOD
    assert fused["reasoning"]["symbolic_steps"] == {"proposed": 3, "in_answer": 3}
