from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

BODY = {"model": "demo", "prompt": "x", "max_tokens": 5}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_latency_and_tokens_are_counted(client):
    ok = sample("deliberate_requests_total", endpoint="/v1/completions", status="200")
    bad = sample("deliberate_requests_total", endpoint="/v1/completions", status="400")
    timed = sample("deliberate_request_latency_seconds_count", endpoint="/v1/completions")
    tokens = sample("deliberate_generated_tokens_total")

    await client.post("/v1/completions", json=BODY)
    await client.post("/v1/completions", json={**BODY, "stream": True})
    await client.post("/v1/completions", json={**BODY, "n": 0})

    assert sample("deliberate_requests_total", endpoint="/v1/completions", status="200") == ok + 2
    assert sample("deliberate_requests_total", endpoint="/v1/completions", status="400") == bad + 1
    assert sample("deliberate_request_latency_seconds_count",
                  endpoint="/v1/completions") == timed + 3
    assert sample("deliberate_generated_tokens_total") == tokens + 10


async def test_unmatched_paths_share_one_label(client):
    before = sample("deliberate_requests_total", endpoint="unmatched", status="404")
    await client.get("/no/such/path")
    await client.get("/another")
    assert sample("deliberate_requests_total", endpoint="unmatched", status="404") == before + 2


async def test_metrics_endpoint_serves_prometheus_text(client):
    await client.get("/health")
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert 'deliberate_requests_total{endpoint="/health",status="200"}' in r.text
    assert "deliberate_request_latency_seconds_bucket" in r.text
    assert "deliberate_generated_tokens_total" in r.text


@pytest.mark.parametrize(("tokens", "block", "cacheable"), [
    (0, 32, 0), (1, 32, 0), (32, 32, 0), (33, 32, 32), (64, 32, 32), (65, 32, 64), (100, 16, 96)])
def test_the_prefix_cache_ceiling_is_the_whole_blocks_before_the_last_token(tokens, block,
                                                                            cacheable):
    from engine.metrics import cacheable_prefix

    assert cacheable_prefix(tokens, block) == cacheable
