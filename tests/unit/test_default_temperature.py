"""A request without `temperature` (the official client sends none unless told): a greedy pass
decodes greedily, a search samples its branches at the server's search temperature, and a
plain request for n samples samples at the model's defaults."""

from __future__ import annotations

import json

import httpx
import pytest

from server.app import create_app
from server.openai.sampling_defaults import SamplingDefaults
from server.settings import Settings
from tests.search_fakes import StepEngine
from tests.unit.test_reasoning_api import LOGIC, PROMPT, SCRIPT, chat

# one way to go: the difficulty probe's samples agree, so the router sends auto to greedy
AGREED = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=AGREED)


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, max_logprobs=2, search_verifiers={"logic": 1.0},
                    difficulty_estimators=["probe"], difficulty_config={"probe": {"samples": 2}},
                    search_temperature=0.7)


@pytest.mark.parametrize("extra", [
    {"reasoning": {"strategy": "greedy"}}, {"reasoning_effort": "low"},
    {"reasoning_effort": "minimal"}, {"reasoning_effort": "none"},
    {},  # auto: the router chooses greedy (the probe's samples agree)
    {"logprobs": True},  # auto answers in one pass
])
async def test_a_greedy_pass_without_temperature_decodes_greedily(client, engine, extra):
    r = await client.post("/v1/chat/completions", json=chat(**extra))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == "greedy"
    passes = [params for _, params in engine.calls if params.n == 1]
    assert passes and passes[-1].temperature == 0.0


async def test_an_explicit_temperature_keeps_its_meaning_on_a_greedy_pass(client, engine):
    r = await client.post("/v1/chat/completions", json=chat(
        temperature=0.9, top_p=0.5, reasoning={"strategy": "greedy"}))
    assert r.status_code == 200, r.text
    last = engine.calls[-1][1]
    assert (last.temperature, last.top_p) == (0.9, 0.5)


async def test_n_samples_without_temperature_still_sample(client, engine):
    r = await client.post("/v1/chat/completions", json=chat(
        n=2, reasoning={"strategy": "greedy"}))
    assert r.status_code == 200, r.text
    last = engine.calls[-1][1]
    assert (last.n, last.temperature, last.top_p) == (2, 1.0, 1.0)


async def test_explicit_temperature_zero_with_n_is_still_refused(client):
    r = await client.post("/v1/chat/completions", json=chat(
        n=2, temperature=0, reasoning={"strategy": "greedy"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "n"


async def test_search_branches_without_temperature_sample_at_the_search_temperature(
        client, engine):
    r = await client.post("/v1/chat/completions", json=chat(
        reasoning={"strategy": "beam", **LOGIC}))
    assert r.status_code == 200, r.text
    sampled = [params for _, params in engine.calls if params.n > 1]
    assert sampled and {p.temperature for p in sampled} == {0.7}


async def test_a_search_without_temperature_is_seeded_from_its_content(client, engine):
    """As a greedy pass would, the same request routed to a search gets the same answer."""
    seeds = []
    for _ in range(2):
        engine.calls.clear()
        r = await client.post("/v1/chat/completions", json=chat(
            reasoning={"strategy": "beam", **LOGIC}))
        assert r.status_code == 200, r.text
        seeds.append([params.seed for _, params in engine.calls if params.n > 1])
    assert seeds[0] and None not in seeds[0] and seeds[0] == seeds[1]


def test_sampling_defaults_come_from_the_model_generation_config(tmp_path):
    assert SamplingDefaults.from_model_dir(tmp_path) == SamplingDefaults(1.0, 1.0)
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "eos_token_id": 2}))
    assert SamplingDefaults.from_model_dir(tmp_path) == SamplingDefaults(0.6, 0.95)
    (tmp_path / "generation_config.json").write_text("{not json")
    assert SamplingDefaults.from_model_dir(tmp_path) == SamplingDefaults(1.0, 1.0)


async def test_n_samples_without_temperature_use_the_model_generation_config(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "generation_config.json").write_text(json.dumps({"temperature": 0.6,
                                                              "top_p": 0.9}))
    engine = StepEngine(prompt=PROMPT, script=SCRIPT)
    app = create_app(Settings(model=str(model), max_n=4, default_strategy="greedy"), engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            sampled = await client.post("/v1/chat/completions", json=chat(n=2))
            single = await client.post("/v1/chat/completions", json=chat())
    assert sampled.status_code == single.status_code == 200
    (_, n2), (_, n1) = engine.calls[-2], engine.calls[-1]
    assert (n2.temperature, n2.top_p) == (0.6, 0.9)
    assert (n1.temperature, n1.top_p) == (0.0, 0.9)
