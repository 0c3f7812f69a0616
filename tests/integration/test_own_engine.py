"""Against a real engine of its own, with two tenants: the one-token first request that used to
kill the engine, prefix-cache isolation read from vLLM's own counters, every route behind the
key, the tenants' safety policies on real answers; and last, the engine's death (kill -9 of its
engine core): requests in flight answer 503 at once and the server exits with status 3 for its
supervisor."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import psutil
import pytest

from tests.integration.conftest import own_server

pytestmark = pytest.mark.slow

KEYS = {"acme": "acme-key", "globex": "globex-key"}
POLICY = """
blocked: [{pattern: "forbidden words", reason: "house rule"}]
keys:
  globex: {blocked: ["Answer"]}
users:
  kid: {blocked: [{pattern: "=", reason: "no equations for kids"}]}
"""
# ~90 tokens: two whole 32-token KV blocks to share
LONG = "Compute: " + "+".join(str(10 + i) for i in range(30))
PUBLIC = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.fixture(scope="module")
def tenant_server(tmp_path_factory):
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    with own_server(tmp_path_factory, "--api-keys", json.dumps(KEYS), "--admin-api-key", "root",
                    "--safety-policy-file", str(policy)) as started:
        yield started


def key(name: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def greedy(prompt: str, max_tokens: int = 8, **extra) -> dict:
    return {"model": "demo", "prompt": prompt, "max_tokens": max_tokens,
            "reasoning": {"strategy": "greedy"}, **extra}


def test_a_one_token_first_request_is_answered_and_the_engine_lives(tenant_server):
    # The request, sent first to a fresh engine: it used to end the engine core with
    # SIGILL on AMX CPUs (engine/cpu_fixes.py, allow_amx)
    with httpx.Client(base_url=tenant_server.url, timeout=60) as http:
        r = http.post("/v1/completions", json={
            "model": "demo", "prompt": "2", "max_tokens": 5,
            "reasoning": {"strategy": "greedy"}}, headers=key("acme"))
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["prompt_tokens"] == 1
        assert http.get("/health").status_code == 200
        assert http.post("/v1/completions", json=greedy("Compute: 2+3\n"),
                         headers=key("acme")).status_code == 200


def test_one_tenant_never_hits_another_tenants_cached_prefix(tenant_server):
    def hits_after(tenant: str) -> float:
        before = tenant_server.metric("vllm:prefix_cache_hits_total")
        r = http.post("/v1/completions", json=greedy(LONG, max_tokens=1), headers=key(tenant))
        assert r.status_code == 200, r.text
        return tenant_server.metric("vllm:prefix_cache_hits_total") - before

    with httpx.Client(base_url=tenant_server.url, timeout=60) as http:
        assert hits_after("acme") == 0  # cold
        assert hits_after("acme") >= 64  # acme's own blocks: two or more
        assert hits_after("globex") == 0  # the same prompt, another tenant: nothing shared
        assert hits_after("globex") >= 64  # its own cache works
        assert hits_after("acme") >= 64


def test_every_engine_route_without_a_key_is_a_401(tenant_server):
    with httpx.Client(base_url=tenant_server.url, timeout=60) as http:
        paths = http.get("/openapi.json").json()["paths"]
        guarded = [(method.upper(), path) for path, item in paths.items() if path not in PUBLIC
                   for method in item]
        assert len(guarded) >= 7
        for method, path in guarded:
            for headers in ({}, {"Authorization": "Bearer acme-key-but-wrong"}):
                r = http.request(method, path, json={"model": "demo"}, headers=headers)
                assert r.status_code == 401, (method, path, r.text)
        # the tenant keys do not manage adapters
        r = http.post("/v1/load_lora_adapter", headers=key("acme"), json={
            "lora_name": "x", "lora_path": "models/demo/adapters/countdown"})
        assert r.status_code == 401


def test_each_tenants_and_users_policy_screens_real_answers(tenant_server):
    with httpx.Client(base_url=tenant_server.url, timeout=60) as http:
        prompt = "Compute: 2+3\n"  # the demo model answers "2+3=5\nAnswer: 5"
        acme = http.post("/v1/completions", json=greedy(prompt, 16), headers=key("acme")).json()
        assert acme["choices"][0]["text"].startswith("2+3=5")
        globex = http.post("/v1/completions", json=greedy(prompt, 16),
                           headers=key("globex")).json()
        assert globex["choices"][0]["finish_reason"] == "content_filter"
        assert globex["choices"][0]["text"] == ""
        kid = http.post("/v1/chat/completions", headers=key("acme"), json={
            "model": "demo", "messages": [{"role": "user", "content": prompt.strip()}],
            "max_tokens": 16, "user": "kid", "reasoning": {"strategy": "beam"}}).json()
        choice = kid["choices"][0]
        assert (choice["finish_reason"], choice["content_filter_reason"]) == (
            "content_filter", "no equations for kids")


def server_processes(url: str) -> tuple[psutil.Process, psutil.Process]:
    """(the server, its vLLM engine core) among this test process's children."""
    port = url.rsplit(":", 1)[1]
    server = next(p for p in psutil.Process().children(recursive=True)
                  if "server" in p.cmdline() and port in p.cmdline())
    core = max(server.children(recursive=True), key=lambda p: p.memory_info().rss)
    return server, core


async def test_engine_death_fails_requests_in_flight_and_exits_for_the_supervisor(
        tenant_server):
    server, core = server_processes(tenant_server.url)
    long = {**greedy("Compute: 1+1\n", 480), "n": 8, "temperature": 1.0, "ignore_eos": True}
    async with httpx.AsyncClient(base_url=tenant_server.url, timeout=60,
                                 headers=key("acme")) as http:
        in_flight = [asyncio.create_task(http.post("/v1/completions", json=long))
                     for _ in range(3)]
        deadline = time.monotonic() + 30
        while tenant_server.metric("vllm:num_requests_running") == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        os.kill(core.pid, signal.SIGKILL)
        killed = time.monotonic()
        for answer in await asyncio.gather(*in_flight):
            assert answer.status_code == 503, answer.text
            assert "engine" in answer.json()["error"]["message"]
        assert time.monotonic() - killed < 10  # at once, not after their 480 tokens
    # then the server goes away by itself, with the status that tells a supervisor why
    status = await asyncio.to_thread(server.wait, 30)
    assert status == 3, tenant_server.log_path.read_text()[-3000:]
