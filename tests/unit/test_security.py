"""API keys per tenant, every engine-reaching route behind them, the tenant's prefix-cache salt
in the engine's scope, and the request limits."""

from __future__ import annotations

import hmac

import pytest
from fastapi.routing import APIRoute

from server.settings import Settings
from server.tenancy import Tenants

KEYS = {"acme": "acme-key", "globex": "globex-key"}
BODY = {"model": "demo", "prompt": "x", "max_tokens": 2}
# Routes anyone may call: probes and scrapers, and the API's own description. None of them
# reaches the engine's generation (/health asks only whether the engine is alive).
PUBLIC = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.fixture
def settings() -> Settings:
    return Settings(api_keys=KEYS, admin_api_key="root-key", default_strategy="greedy",
                    max_n=4, max_body_bytes=4096, max_header_bytes=2048, max_messages=3,
                    max_stop=2, max_tokens_limit=8)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_is_found_whatever_its_position_and_only_as_a_bearer_token():
    tenants = Tenants(KEYS)
    assert tenants.identify("Bearer globex-key").name == "globex"
    assert tenants.identify("bearer acme-key").name == "acme"
    for wrong in (None, "", "Bearer", "Bearer acme-ke", "Bearer acme-key ", "Basic acme-key",
                  "acme-key", "Bearer \udcff"):
        assert tenants.identify(wrong) is None


def test_keys_are_compared_as_digests_with_compare_digest(monkeypatch):
    # constant time: every configured key is compared, with hmac.compare_digest, on digests of
    # equal length, whichever key (if any) matches
    calls = []

    def spy(a, b):
        calls.append((len(a), len(b)))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", spy)
    tenants = Tenants(KEYS)
    for token in ("acme-key", "x", "a much longer wrong key than any configured one"):
        calls.clear()
        tenants.identify(f"Bearer {token}")
        assert calls == [(32, 32), (32, 32)]


def test_cache_salts_differ_per_key_are_stable_and_hide_the_key():
    first, second = Tenants(KEYS), Tenants(KEYS)
    acme = first.identify("Bearer acme-key")
    assert acme.cache_salt == second.identify("Bearer acme-key").cache_salt  # across servers
    assert acme.cache_salt != first.identify("Bearer globex-key").cache_salt
    assert "acme-key" not in acme.cache_salt and len(acme.cache_salt) == 64


async def test_every_route_but_the_public_ones_needs_a_key(app, client):
    routes = [(method, route.path) for route in app.routes if isinstance(route, APIRoute)
              for method in route.methods]
    guarded = [(m, p) for m, p in routes if p not in PUBLIC]
    assert {p for _, p in guarded} >= {"/v1/completions", "/v1/chat/completions",
                                       "/v1/models", "/v1/verify", "/v1/load_lora_adapter",
                                       "/v1/unload_lora_adapter", "/v1/reload_safety_policy"}
    for method, path in guarded:
        for headers in ({}, bearer("wrong")):
            r = await client.request(method, path, json={}, headers=headers)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "invalid_api_key"


async def test_the_admin_key_guards_management_and_tenant_keys_do_not(client):
    for path in ("/v1/load_lora_adapter", "/v1/reload_safety_policy"):
        assert (await client.post(path, json={}, headers=bearer("acme-key"))).status_code == 401
        assert (await client.post(path, json={}, headers=bearer("root-key"))).status_code != 401
    # and the admin key is no tenant key
    assert (await client.post("/v1/completions", json=BODY,
                              headers=bearer("root-key"))).status_code == 401


async def test_each_tenants_engine_requests_carry_its_own_cache_salt(client, engine):
    salts = {}
    for name, key in KEYS.items():
        r = await client.post("/v1/completions", json=BODY, headers=bearer(key))
        assert r.status_code == 200
        scope = engine.scopes[engine.requests[-1][0]]
        salts[name] = scope.cache_salt
    tenants = Tenants(KEYS)
    assert salts == {name: tenants.identify(f"Bearer {key}").cache_salt
                     for name, key in KEYS.items()}
    assert len(set(salts.values())) == 2


@pytest.mark.parametrize(("body", "param"), [
    ({"max_tokens": 9}, "max_tokens"),
    ({"stop": ["a", "b", "c"]}, "stop"),
    ({"n": 5, "temperature": 1}, "n"),
])
async def test_limits_are_400s_naming_the_field(client, body, param):
    r = await client.post("/v1/completions", json={**BODY, **body}, headers=bearer("acme-key"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


async def test_too_many_messages_is_a_400(client):
    messages = [{"role": "user", "content": "hi"}] * 4
    r = await client.post("/v1/chat/completions", json={"model": "demo", "messages": messages},
                          headers=bearer("acme-key"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


async def test_max_tokens_defaults_to_the_limit(client, engine):
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": "x"},
                          headers=bearer("acme-key"))
    assert r.status_code == 200
    assert engine.requests[-1][2].max_tokens == 8


async def test_large_headers_are_a_431_and_large_bodies_a_413(client):
    r = await client.post("/v1/completions", json=BODY,
                          headers={**bearer("acme-key"), "x-padding": "a" * 4096})
    assert r.status_code == 431 and r.json()["error"]["code"] == "request_header_fields_too_large"
    r = await client.post("/v1/completions", json={**BODY, "prompt": "a" * 5000},
                          headers=bearer("acme-key"))
    assert r.status_code == 413


def test_an_empty_key_is_no_key_and_an_empty_tenant_key_is_refused():
    assert not Tenants.from_settings(Settings(api_key="")).required
    with pytest.raises(ValueError, match="empty"):
        Tenants.from_settings(Settings(api_keys={"acme": ""}))
