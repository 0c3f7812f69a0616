"""Adapter endpoints and adapter routing over HTTP, against the scripted engine."""

import asyncio
import contextlib

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from server.app import create_app
from server.settings import Settings
from tests.unit.test_adapter_validation import make_adapter


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "adapters"
    for name in ("a", "b", "ondemand"):
        make_adapter(root / name)
    return root


@pytest.fixture
def settings(tmp_path, root):
    base = tmp_path / "base"
    base.mkdir()
    save_file({"model.layers.0.self_attn.q_proj.weight": np.zeros((8, 6), np.float32)},
              str(base / "model.safetensors"))
    return Settings(model=str(base), adapter_roots=[str(root)], adapter_resolver_root=str(root),
                    max_lora_rank=8, max_logprobs=2, admin_api_key="admin",
                    lora_modules=[f"a={root / 'a'}"], default_strategy="greedy")


@contextlib.asynccontextmanager
async def serving(settings, engine):
    """A client of the app over `engine`, with the admin key."""
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": "Bearer admin"}) as client:
            yield client


@pytest.fixture
async def client(settings, engine):
    async with serving(settings, engine) as client:
        yield client


def complete(model, **extra):
    return {"model": model, "prompt": "Compute: 1+1\n", "max_tokens": 5, "temperature": 0,
            **extra}


def assert_error(response, status, param=None, words=""):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and words in error["message"]


async def test_preloaded_adapter_is_listed_with_parent_and_routes_requests(client, engine, root):
    models = (await client.get("/v1/models")).json()["data"]
    assert [(m["id"], m["parent"]) for m in models] == [("demo", None), ("a", "demo")]
    assert models[1]["root"] == str((root / "a").resolve())
    assert (await client.get("/v1/models/a")).json() == models[1]
    r = await client.post("/v1/completions", json=complete("a"))
    assert r.status_code == 200, r.text
    assert list(engine.adapter_of.values()) == ["a"]
    await client.post("/v1/completions", json=complete("demo"))
    assert list(engine.adapter_of.values()) == ["a", None]


async def test_load_then_unload_over_http(client, engine, root):
    body = {"lora_name": "renamed", "lora_path": str(root / "b")}  # not a resolver name
    r = await client.post("/v1/load_lora_adapter", json=body)
    assert r.status_code == 200 and "added successfully" in r.text
    assert engine.adapters["renamed"] == str((root / "b").resolve())
    r = await client.post("/v1/unload_lora_adapter", json={"lora_name": "renamed"})
    assert r.status_code == 200 and "removed successfully" in r.text
    assert "renamed" not in engine.adapters
    assert_error(await client.post("/v1/completions", json=complete("renamed")), 404, "model",
                 "does not exist")


async def test_bad_adapter_requests_get_clear_4xx(client, root, tmp_path):
    load = lambda body: client.post("/v1/load_lora_adapter", json=body)  # noqa: E731
    assert_error(await load({"lora_name": "x", "lora_path": str(root / "missing")}), 404,
                 "lora_path", "not an existing directory")
    assert_error(await load({"lora_name": "x", "lora_path": str(root / ".." / "base")}), 400,
                 "lora_path", "outside the allowed adapter roots")
    assert_error(await load({"lora_name": "a", "lora_path": str(root / "b")}), 409, "lora_name",
                 "already loaded")
    assert_error(await load({"lora_name": "demo", "lora_path": str(root / "b")}), 409,
                 "lora_name", "already loaded")
    assert_error(await load({"lora_name": "x"}), 400, "lora_path")
    assert_error(await client.post("/v1/unload_lora_adapter", json={"lora_name": "nope"}), 404,
                 "lora_name", "no adapter named 'nope'")
    # and the server still serves
    assert (await client.post("/v1/completions", json=complete("a"))).status_code == 200


async def test_management_needs_the_admin_key(client, root):
    r = await client.post("/v1/unload_lora_adapter", json={"lora_name": "a"},
                          headers={"Authorization": "Bearer wrong"})
    assert_error(r, 401, None, "admin API key")


async def test_unknown_model_naming_an_adapter_directory_loads_on_demand(client, engine):
    r = await client.post("/v1/completions", json=complete("ondemand"))
    assert r.status_code == 200, r.text
    assert "ondemand" in engine.adapters
    models = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert "ondemand" in models


async def test_an_adapter_load_the_engine_hangs_on_is_a_504_for_whoever_waited(
        settings, engine, root):
    async def hang(name, path):
        await asyncio.Event().wait()

    async with serving(settings.model_copy(update={"adapter_timeout_s": 0.1}), engine) as client:
        engine.add_adapter = hang
        r = await client.post("/v1/load_lora_adapter",
                              json={"lora_name": "x", "lora_path": str(root / "b")})
        assert_error(r, 504, None, "more than 0.1 s loading adapter 'x' (--adapter-timeout-s)")
        assert r.json()["error"]["code"] == "adapter_timeout"
        assert_error(await client.post("/v1/completions", json=complete("ondemand")), 504, None,
                     "loading adapter 'ondemand'")
        models = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
        assert models == ["demo", "a"]


async def test_prompt_logprobs_is_capped(client):
    assert_error(await client.post("/v1/completions", json=complete("demo", prompt_logprobs=3)),
                 400, "prompt_logprobs", "limit of 2")


async def test_adapter_metrics_are_exported(client, root):
    await client.post("/v1/completions", json=complete("a"))
    await client.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/etc"})
    text = (await client.get("/metrics")).text
    assert 'deliberate_adapter_requests_total{adapter="a"}' in text
    assert 'deliberate_adapter_loads_total{result="ok"}' in text
    assert 'deliberate_adapter_loads_total{result="invalid_adapter"}' in text
    assert "deliberate_adapters_loaded 1.0" in text


async def test_the_adapters_the_server_scores_with_are_not_the_clients_to_swap(client, engine,
                                                                               root):
    # the PRM verifier scores with "prm", the ORM with "orm", the learned difficulty estimator
    # with "difficulty". When the server has its own (here in the resolver root), loading
    # another adapter under one of those names would change every tenant's scores, and
    # unloading one is not a client's call either.
    for name, owner in (("prm", "the prm verifier"), ("orm", "the orm verifier"),
                        ("difficulty", "the learned difficulty estimator")):
        make_adapter(root / name)
        r = await client.post("/v1/load_lora_adapter",
                              json={"lora_name": name, "lora_path": str(root / "b")})
        assert_error(r, 409, "lora_name", f"{name!r} is the adapter {owner} scores with")
        assert r.json()["error"]["code"] == "adapter_reserved"
        assert_error(await client.post("/v1/unload_lora_adapter", json={"lora_name": name}),
                     409, "lora_name", "choose another lora_name")
    assert "prm" not in engine.adapters
    # other names are still the client's
    r = await client.post("/v1/load_lora_adapter",
                          json={"lora_name": "prm2", "lora_path": str(root / "b")})
    assert r.status_code == 200, r.text


async def test_a_server_without_its_own_scoring_adapter_takes_one_once(client, engine, root):
    # how a bring-your-own model gets its reward model: trained, then loaded as "orm"
    r = await client.post("/v1/load_lora_adapter",
                          json={"lora_name": "orm", "lora_path": str(root / "b")})
    assert r.status_code == 200, r.text
    assert engine.adapters["orm"] == str((root / "b").resolve())
    # then it is the server's: neither replaced nor unloaded
    replace = {"lora_name": "orm", "lora_path": str(root / "ondemand")}
    assert_error(await client.post("/v1/load_lora_adapter", json=replace), 409, "lora_name",
                 "the orm verifier scores with")
    assert_error(await client.post("/v1/unload_lora_adapter", json={"lora_name": "orm"}), 409,
                 "lora_name", "the orm verifier scores with")
    assert engine.adapters["orm"] == str((root / "b").resolve())


async def test_an_operator_still_sets_a_scoring_adapter_at_start(settings, engine, root):
    settings = settings.model_copy(update={"lora_modules": [f"prm={root / 'b'}"]})
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        assert engine.adapters["prm"] == str((root / "b").resolve())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": "Bearer admin"}) as client:
            r = await client.post("/v1/unload_lora_adapter", json={"lora_name": "prm"})
            assert_error(r, 409, "lora_name", "the prm verifier")
        assert "prm" in engine.adapters
