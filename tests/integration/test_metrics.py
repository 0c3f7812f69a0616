from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.slow


def counter(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_have_ours_and_vllms(server):
    ok = 'deliberate_requests_total{endpoint="/v1/completions",status="200"}'
    before = httpx.get(f"{server.url}/metrics").text
    reply = httpx.post(f"{server.url}/v1/completions", json={
        "model": "demo", "prompt": "Compute: 2+3\n", "max_tokens": 8, "temperature": 0}).json()
    after = httpx.get(f"{server.url}/metrics").text

    assert counter(after, ok) == counter(before, ok) + 1
    generated = reply["usage"]["completion_tokens"]
    assert (counter(after, "deliberate_generated_tokens_total")
            == counter(before, "deliberate_generated_tokens_total") + generated)
    assert "deliberate_request_latency_seconds_bucket" in after
    # vLLM's own series, from the engine inside the server process.
    for name in ("vllm:num_requests_running", "vllm:generation_tokens_total",
                 "vllm:e2e_request_latency_seconds_bucket"):
        assert re.search(rf"^{re.escape(name)}{{", after, re.M), name
