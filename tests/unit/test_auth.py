from __future__ import annotations

import pytest

from server.settings import Settings

BODY = {"model": "demo", "prompt": "x", "max_tokens": 2}


@pytest.fixture
def settings() -> Settings:
    return Settings(api_key="s3cret")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "s3cret", "Basic s3cret"])
async def test_v1_needs_the_key(client, header):
    headers = {"Authorization": header} if header else {}
    for r in (await client.post("/v1/completions", json=BODY, headers=headers),
              await client.get("/v1/models", headers=headers)):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.json()["error"]["type"] == "authentication_error"


async def test_right_key_passes(client):
    headers = {"Authorization": "Bearer s3cret"}
    assert (await client.post("/v1/completions", json=BODY, headers=headers)).status_code == 200
    assert (await client.get("/v1/models", headers=headers)).status_code == 200


async def test_health_and_metrics_stay_open(client):
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
