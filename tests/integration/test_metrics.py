from __future__ import annotations

import re
import time

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


def _total(text: str, name: str) -> float:
    """A counter summed over its label sets (vLLM labels its series by engine and model)."""
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$",
                                            text, re.M))


def test_a_repeated_prompt_hits_the_prefix_cache_exactly_up_to_the_ceiling(server):
    # The ceiling counts whole blocks before the prompt's last token, per sequence: a prompt
    # the cache has already seen hits exactly that much, so the ceiling is tight.
    names = ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total",
             "deliberate_prefix_cache_ceiling_tokens_total")

    def read() -> list[float]:
        text = httpx.get(f"{server.url}/metrics").text
        return [_total(text, n) for n in names]

    body = {"model": "demo", "prompt": "Compute: 12+34*5-6*7+89-10*11+12*13-14+15*16-17\n" * 2,
            "max_tokens": 4, "temperature": 0.5, "n": 2, "seed": 3}
    first = httpx.post(f"{server.url}/v1/completions", json=body).json()
    length = first["usage"]["prompt_tokens"]
    assert length > 64
    before = read()
    httpx.post(f"{server.url}/v1/completions", json=body).raise_for_status()
    deadline = time.monotonic() + 5
    while (after := read())[1] == before[1] and time.monotonic() < deadline:
        time.sleep(0.1)  # vLLM publishes its counters from the output loop
    hits, queries, ceiling = (a - b for a, b in zip(after, before))
    assert queries == 2 * length
    assert ceiling == 2 * ((length - 1) // 32 * 32)
    assert hits == ceiling
