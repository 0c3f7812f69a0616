"""Bounded-context reasoning (reasoning.context) on the real engine: the demo model's window is
512 positions, and a long arithmetic chain's prompt plus worked solution is longer. With the
chunked-arithmetic adapter (models/demo/adapters/long_arithmetic), each chunk restarts from the
expression that remains, and beam with the exact `logic` verifier answers inside the chunks."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import ROOT
from training.tasks import arithmetic, long_arithmetic

pytestmark = pytest.mark.slow

ADAPTER = ROOT / "models" / "demo" / "adapters" / "long_arithmetic"
CHUNK = 200


async def test_a_path_longer_than_the_window_is_answered_in_chunks(server):
    if not server.trained_demo_model:
        pytest.skip("the known answers are the demo model's")
    problems = long_arithmetic.generate(35, 3, 48)
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
        r = await http.post("/v1/load_lora_adapter", json={
            "lora_name": "long_arithmetic", "lora_path": str(ADAPTER)})
        assert r.status_code == 200, r.text
        bodies = []
        for p in problems:
            assert len(p.prompt) + len(arithmetic.solution(p)) > 512
            r = await http.post("/v1/chat/completions", json={
                "model": "long_arithmetic", "messages": [{"role": "user", "content": p.prompt}],
                "max_tokens": 1500, "temperature": 1.0, "reasoning": {
                    "strategy": "beam", "beam_width": 2, "n_candidates": 2, "seed": 1,
                    "verifiers": {"logic": 1.0},
                    "context": {"chunk_tokens": CHUNK, "carry": "state"}}})
            assert r.status_code == 200, r.text
            bodies.append(r.json())
        await http.post("/v1/unload_lora_adapter", json={"lora_name": "long_arithmetic"})
    right = [arithmetic.check(p, b["choices"][0]["message"]["content"])
             for p, b in zip(problems, bodies)]
    assert any(right), [b["choices"][0]["message"]["content"][-80:] for b in bodies]
    for p, body, ok in zip(problems, bodies, right):
        context = body["reasoning"]["context"]
        prompt = body["usage"]["prompt_tokens"]
        assert context["chunks"] >= 2
        # no request held more than the prompt and one chunk, however long the path
        assert context["max_context_tokens"] <= prompt + CHUNK
        assert context["peak_kv_tokens"] <= 4 * (prompt + CHUNK)
        if ok:  # usage counts every chunk's tokens: the whole solution at least
            assert body["usage"]["completion_tokens"] >= len(arithmetic.solution(p)) + 1
