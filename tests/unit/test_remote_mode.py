"""The server's side of remote mode: settings, the 503s with Retry-After when no replica
answers, and one engine request scope per HTTP request."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from engine.protocol import EngineUnavailable
from server.app import create_app
from server.settings import Settings, parse_settings
from tests.fakes import FakeEngine


def test_upstreams_from_repeated_flags_or_a_comma_separated_variable(monkeypatch):
    settings = parse_settings(["--engine", "remote", "--upstream", "http://a:1",
                               "--upstream", "http://b:2"])
    assert settings.engine == "remote" and settings.upstreams == ["http://a:1", "http://b:2"]
    monkeypatch.setenv("DELIBERATE_UPSTREAMS", "http://a:1, http://b:2")
    assert parse_settings([]).upstreams == ["http://a:1", "http://b:2"]


@pytest.mark.parametrize("name", ["API_KEY", "ADMIN_API_KEY", "UPSTREAM_API_KEY"])
def test_an_empty_key_means_no_key(monkeypatch, name):
    # docker compose passes `KEY: ${KEY:-}` as "" when the variable is unset
    monkeypatch.setenv(f"DELIBERATE_{name}", "")
    assert getattr(parse_settings([]), name.lower()) is None


async def test_an_empty_api_key_leaves_the_api_open(monkeypatch):
    monkeypatch.setenv("DELIBERATE_API_KEY", "")
    app = create_app(Settings(default_strategy="greedy"), FakeEngine())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/v1/models")).status_code == 200


def test_gpu_engine_options_pass_through():
    settings = parse_settings(["--tensor-parallel-size", "2", "--pipeline-parallel-size", "2",
                               "--gpu-memory-utilization", "0.8", "--quantization", "fp8",
                               "--no-enforce-eager", "--engine-args",
                               '{"enable_chunked_prefill": false}'])
    assert (settings.tensor_parallel_size, settings.pipeline_parallel_size,
            settings.gpu_memory_utilization, settings.quantization, settings.enforce_eager,
            settings.engine_args) == (2, 2, 0.8, "fp8", False, {"enable_chunked_prefill": False})
    # unset: the engine picks per device (256 MiB KV cache and eager on a CPU only)
    assert parse_settings([]).kv_cache_bytes is None and parse_settings([]).enforce_eager is None


class FleetDown(FakeEngine):
    async def check_health(self) -> None:
        raise EngineUnavailable("no upstream vLLM replica is answering", retry_after_s=7)

    async def generate(self, *args, **kwargs):
        raise EngineUnavailable("no upstream vLLM replica is answering", retry_after_s=7)
        yield  # an async generator, as the protocol's


async def test_no_replica_is_503_with_retry_after_on_health_and_requests():
    app = create_app(Settings(default_strategy="greedy"), FleetDown())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = await client.get("/health")
        chat = await client.post("/v1/chat/completions", json={
            "model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    for response in (health, chat):
        assert response.status_code == 503 and response.headers["retry-after"] == "7"
    assert chat.json()["error"]["code"] == "engine_unavailable"


@pytest.mark.parametrize("engine, exits", [(FleetDown(), False), (FakeEngine(), True)])
async def test_a_fleet_with_no_replica_up_is_waited_for_but_a_dead_engine_ends_the_server(
        engine, exits):
    """Replicas are probed back, so a fleet that is down keeps the server up (503s until one
    returns); an in-process engine that died is for the supervisor (exit status 3)."""
    app = create_app(Settings(default_strategy="greedy", health_check_interval_s=0.01), engine)
    stopped = asyncio.Event()
    app.state.request_shutdown = stopped.set
    async with app.router.lifespan_context(app):
        engine.dead = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), 0.3)
    assert (stopped.is_set(), app.state.engine_failed) == (exits, exits)


async def test_every_http_request_gets_its_own_request_scope():
    engine = FakeEngine()
    app = create_app(Settings(default_strategy="greedy"), engine)
    body = {"model": "demo", "prompt": "1+1", "max_tokens": 4}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for stream in (False, True, False):
            assert (await client.post("/v1/completions",
                                      json={**body, "stream": stream})).status_code == 200
    scopes = list(engine.scopes.values())
    assert len(scopes) == 3 and None not in scopes  # the streamed body ran inside its scope too
    assert len({scope.key for scope in scopes}) == 3
