"""Configured reward models in the server: started by name and kind, scoring through /v1/verify
and inside a search with the request's conversation, and a broken one degrading requests only."""

from __future__ import annotations

import contextlib
import sys

import httpx
import pytest

from server.app import create_app
from server.settings import Settings
from tests.fakes import FakeEngine
from tests.unit.test_reward_model_verifiers import ScriptedRewardEngine, softmax1

PROBLEM = "Compute: 2+3*4"
WARM_UP = 2  # each reward model's requests at start (server.reward_models.warm_up)


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    return str(tmp_path)


def reward_settings(model_dir, **fields) -> Settings:
    return Settings(default_strategy="greedy", max_logprobs=2, reward_models={
        "math_prm": {"kind": "pooling_prm", "engine": {"model": model_dir}},
        "skywork": {"kind": "classifier_orm", "engine": {"model": model_dir}}}, **fields)


@contextlib.asynccontextmanager
async def serve(settings: Settings, engines: dict, engine: FakeEngine | None = None):
    """The app with scripted reward engines (`engines`: name -> engine, or an exception its
    start raises)."""
    started = []

    @contextlib.asynccontextmanager
    async def open_engine(name, spec):
        if isinstance(engines[name], Exception):
            raise engines[name]
        started.append((name, spec.kind))
        yield engines[name]

    app = create_app(settings, engine or FakeEngine(), open_reward_engine=open_engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.started = started
            yield client


async def test_reward_models_score_through_verify_with_the_conversation(model_dir):
    prm, orm = ScriptedRewardEngine(), ScriptedRewardEngine()
    async with serve(reward_settings(model_dir), {"math_prm": prm, "skywork": orm}) as client:
        r = await client.post("/v1/verify", json={
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": PROBLEM}],
            "completion": "3*4=12\n2+12=14", "verifiers": {"math_prm": 1, "skywork": 1}})
    assert client.started == [("math_prm", "pooling_prm"), ("skywork", "classifier_orm")]
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["scores"]["math_prm"] for s in body["steps"]] == pytest.approx(
        [softmax1(1.5), softmax1(-1.5)])
    assert [s["scores"]["skywork"] for s in body["steps"]] == pytest.approx([1.0, softmax1(2.0)])
    assert body["verifier_errors"] == {}
    asked = prm.pooled[WARM_UP:] + orm.pooled[WARM_UP:]
    assert asked and all("Be brief." in text for text, _ in asked)


async def test_a_chat_search_carries_the_conversation_to_the_reward_model(model_dir):
    prm = ScriptedRewardEngine()
    settings = reward_settings(model_dir)
    async with serve(settings, {"math_prm": prm, "skywork": ScriptedRewardEngine()},
                     FakeEngine(reply="3*4=12\nAnswer: 14", max_model_len=512)) as client:
        r = await client.post("/v1/chat/completions", json={
            "model": "demo", "max_tokens": 40,
            "messages": [{"role": "system", "content": "Show each step."},
                         {"role": "user", "content": PROBLEM}],
            "reasoning": {"strategy": "beam", "beam_width": 2, "n_candidates": 2,
                          "verifiers": {"math_prm": 1}}})
    assert r.status_code == 200, r.text
    assert r.json()["reasoning"]["verifier_scores"]["math_prm"] > 0
    assert prm.pooled[WARM_UP:] and all(text.startswith("<|im_start|>system\nShow each step.")
                                        for text, _ in prm.pooled[WARM_UP:])


async def test_a_reward_model_whose_engine_fails_degrades_requests_not_the_server(model_dir):
    engines = {"math_prm": RuntimeError("no such architecture"),
               "skywork": ScriptedRewardEngine()}
    async with serve(reward_settings(model_dir), engines) as client:
        r = await client.post("/v1/verify", json={
            "prompt": PROBLEM, "completion": "3*4=12\n2+12=14",
            "verifiers": {"math_prm": 1, "skywork": 1}})
        health = await client.get("/health")
    assert r.status_code == 200, r.text
    assert "engine failed to start" in r.json()["verifier_errors"]["math_prm"]
    assert "no such architecture" in r.json()["verifier_errors"]["math_prm"]
    assert r.json()["verifier_scores"] == {"skywork": pytest.approx(softmax1(2.0))}
    assert health.status_code == 200


async def test_a_reward_model_of_the_wrong_kind_is_found_at_start_by_its_first_scoring(
        model_dir):
    from engine.protocol import InvalidEngineRequest

    classifier = ScriptedRewardEngine()

    async def refuse(prompt, task):
        if task != "classify":
            raise InvalidEngineRequest(f"Unsupported task: {task!r}")
        return [[0.0]]

    classifier.pool = refuse
    async with serve(reward_settings(model_dir),
                     {"math_prm": classifier, "skywork": ScriptedRewardEngine()}) as client:
        r = await client.post("/v1/verify", json={
            "prompt": PROBLEM, "completion": "3*4=12", "verifiers": {"math_prm": 1}})
    assert r.status_code == 200, r.text
    error = r.json()["verifier_errors"]["math_prm"]
    assert "failed its first scoring at start" in error and "Unsupported task" in error
    assert "is it a pooling_prm?" in error


async def test_a_reward_model_engine_that_dies_mid_request_is_a_verifier_error(model_dir):
    from engine.protocol import EngineDeadError

    dying = ScriptedRewardEngine()

    async def dead(prompt, task):
        raise EngineDeadError("engine core exited")

    async with serve(reward_settings(model_dir), {"math_prm": dying,
                                                   "skywork": ScriptedRewardEngine()}) as client:
        dying.pool = dead  # after its start
        r = await client.post("/v1/verify", json={
            "prompt": PROBLEM, "completion": "3*4=12", "verifiers": {"math_prm": 1, "logic": 1}})
        again = await client.post("/v1/verify", json={
            "prompt": PROBLEM, "completion": "3*4=12", "verifiers": {"logic": 1}})
    assert r.status_code == 200 and again.status_code == 200
    assert "engine core exited" in r.json()["verifier_errors"]["math_prm"]


async def test_a_reward_model_that_is_not_a_local_directory_stops_the_start_naming_it():
    settings = Settings(reward_models={"math_prm": {
        "kind": "pooling_prm", "engine": {"model": "Qwen/Qwen2.5-Math-PRM-7B"}}})
    with pytest.raises(ValueError, match=r"--reward-models math_prm.engine.model: "
                                         r"'Qwen/Qwen2.5-Math-PRM-7B' is not a local model "
                                         r"directory. It looks like a hub id"):
        async with serve(settings, {}):
            pass


async def test_a_reward_model_may_not_take_a_plugin_s_name(model_dir):
    settings = Settings(reward_models={"prm": {"kind": "pooling_prm",
                                               "engine": {"model": model_dir}}})
    with pytest.raises(ValueError, match="'prm' is taken by an installed plugin"):
        async with serve(settings, {"prm": ScriptedRewardEngine()}):
            pass


@pytest.mark.parametrize("body, param", [
    ({"completion": "1"}, "prompt"),
    ({"completion": "1", "prompt": PROBLEM, "messages": [{"role": "user", "content": "x"}]},
     "prompt"),
    ({"completion": "1", "messages": [{"role": "system", "content": "x"}]}, "messages"),
])
async def test_verify_takes_a_prompt_or_a_conversation(client, body, param):
    r = await client.post("/v1/verify", json={**body, "verifiers": {"logic": 1}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_the_setting_parses_from_the_command_line_and_the_environment(monkeypatch):
    from server.settings import parse_settings

    flag = parse_settings(["--reward-models", '{"rm": {"kind": "classifier_orm", '
                                              '"engine": {"model": "/m"}, "center": 3}}'])
    assert flag.reward_models["rm"].center == 3
    monkeypatch.setenv("DELIBERATE_REWARD_MODELS",
                       '{"shepherd": {"kind": "token_prm", "engine": {"model": "/m"}}}')
    env = parse_settings([])
    assert env.reward_models["shepherd"].step_tag == " ки"


@pytest.mark.parametrize("kind, runner, pooler", [
    ("pooling_prm", "pooling", {"tok_pooling_type": "ALL"}),
    ("classifier_orm", "pooling", None),
    ("token_prm", "generate", None),
])
def test_each_kind_gets_an_engine_of_its_own_settings(kind, runner, pooler):
    from server.reward_models import engine_config

    spec = Settings(reward_models={"rm": {"kind": kind, "engine": {
        "model": "/m", "max_model_len": 1024, "kv_cache_bytes": 2**26}}}).reward_models["rm"]
    config = engine_config("rm", spec)
    assert (config.model, config.served_model_name, config.runner) == ("/m", "rm", runner)
    assert config.pooler_config == pooler and not config.enable_lora
    assert (config.max_model_len, config.kv_cache_bytes) == (1024, 2**26)
    assert config.max_logprobs == 20  # the token PRM's top_k: what its engine must keep


async def test_in_remote_mode_a_reward_model_runs_on_its_own_replicas_with_no_vllm_here(
        model_dir, monkeypatch):
    """A reward model with engine.upstreams gets a remote engine over them (the fleet's key
    and timeouts, its own tokenizer), and the server still imports neither vLLM nor the
    in-process engine: importing either fails here."""
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setitem(sys.modules, "engine.local", None)
    opened, prm = [], ScriptedRewardEngine()

    @contextlib.asynccontextmanager
    async def open_remote_engine(config):
        opened.append(config)
        yield prm

    monkeypatch.setattr("engine.remote.open_remote_engine", open_remote_engine)
    settings = Settings(
        engine="remote", upstreams=["http://policy:8001"], upstream_api_key="fleet-key",
        upstream_timeout_s=30, default_strategy="greedy", reward_models={"math_prm": {
            "kind": "pooling_prm", "engine": {"model": model_dir,
                                              "upstreams": ["http://prm:8002"]}}})
    app = create_app(settings, FakeEngine())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post("/v1/verify", json={
                "prompt": PROBLEM, "completion": "3*4=12", "verifiers": {"math_prm": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["verifier_errors"] == {}
    assert r.json()["steps"][0]["scores"]["math_prm"] == pytest.approx(softmax1(1.5))
    [config] = opened
    assert (config.upstreams, config.tokenizer, config.served_model_name) == (
        ("http://prm:8002",), model_dir, "math_prm")
    assert (config.api_key, config.timeout_s) == ("fleet-key", 30)


def test_remote_mode_refuses_a_reward_model_that_would_start_vllm_in_this_process():
    with pytest.raises(ValueError, match=r"--engine remote runs no vLLM in this process, but "
                                         r"reward models \['math_prm'\] would start it here.*"
                                         r"--runner pooling.*engine\.upstreams"):
        Settings(engine="remote", upstreams=["http://policy:8001"], reward_models={
            "math_prm": {"kind": "pooling_prm", "engine": {"model": "/m"}},
            "skywork": {"kind": "classifier_orm",
                        "engine": {"model": "/m", "upstreams": ["http://orm:8003"]}}})


def test_a_reward_model_on_replicas_takes_engine_settings_as_their_flags_not_here():
    with pytest.raises(ValueError, match="kv_cache_bytes, max_model_len: settings of an engine "
                                         "in this process.*`vllm serve` flags"):
        Settings(reward_models={"rm": {"kind": "classifier_orm", "engine": {
            "model": "/m", "upstreams": ["http://orm:8003"], "kv_cache_bytes": 2**26,
            "max_model_len": 512}}})


def test_a_hub_id_or_a_directory_without_config_is_refused_with_what_to_give(tmp_path):
    from engine.model_dir import require_local_model

    with pytest.raises(ValueError, match=r"--model: 'meta-llama/Llama-3.2-1B' is not a local "
                                         r"model directory\. It looks like a hub id.*--local-dir"):
        require_local_model("meta-llama/Llama-3.2-1B", "--model")
    with pytest.raises(ValueError, match="has no config.json"):
        require_local_model(tmp_path, "--model")
    (tmp_path / "config.json").write_text("{}")
    assert require_local_model(str(tmp_path), "--model") == tmp_path
