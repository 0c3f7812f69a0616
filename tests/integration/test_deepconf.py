"""deepconf on the real engine: an online trace whose confidence falls is aborted in vLLM, so
the engine generates only what the search received, and fewer tokens than the same traces
run offline (every trace to its end)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.integration.test_disconnect import engine_busy, wait_until
from training.tasks import get_task

pytestmark = pytest.mark.slow


def request(mode: str) -> dict:
    p = get_task("countdown").generate(5, 1)[0]
    # keep_share 0.1: the threshold is near the best warm-up trace's confidence, so most of
    # the others fall below it somewhere; `logic` alone: no verifier generates with the engine;
    # no consensus stop (on by default), so that every trace runs until it falls or ends
    return {"model": "demo", "messages": [{"role": "user", "content": p.prompt}],
            "max_tokens": 128, "temperature": 1.0,
            "reasoning": {"strategy": "deepconf", "deepconf_mode": mode, "n_candidates": 8,
                          "warmup": 2, "keep_share": 0.1, "seed": 3, "consensus": False,
                          "verifiers": {"logic": 1}}}


async def generated_by_engine(server, body: dict) -> tuple[dict, float]:
    """The response, and the tokens vLLM generated for it (its own counter)."""
    before = server.metric("vllm:generation_tokens_total")
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
        r = await http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    await wait_until(lambda: engine_busy(server) == 0, timeout_s=10)
    await asyncio.sleep(0.5)  # the last counter update
    return r.json(), server.metric("vllm:generation_tokens_total") - before


async def test_online_traces_below_the_threshold_are_aborted_in_the_engine(server):
    online, online_tokens = await generated_by_engine(server, request("online"))
    report = online["reasoning"]["deepconf"]
    assert report["mode"] == "online" and report["aborted"] >= 1, report
    assert report["aborted"] + report["completed"] == report["traces"] == 8
    # vLLM generated what the search received, and no more: the aborted traces stopped there
    # (a token or two each may be in flight when the request is closed)
    counted = online["usage"]["completion_tokens"]
    assert counted == report["generated_tokens"]
    assert counted <= online_tokens <= counted + 2 * report["aborted"]
    # the same seeded traces, all run to their end: the aborts saved the rest of theirs
    offline, offline_tokens = await generated_by_engine(server, request("offline"))
    assert offline["reasoning"]["deepconf"]["aborted"] == 0
    assert offline_tokens >= online_tokens + 10 * report["aborted"]
