"""Seeded sampling under load: vLLM's CPU runner used to die rewinding a CPU generator when a
seeded request's prefill was split (fixed in engine/cpu_fixes.py)."""

import asyncio

import httpx
import pytest

pytestmark = pytest.mark.slow


async def test_many_concurrent_seeded_requests_leave_the_engine_alive(server):
    bodies = [{"model": "demo", "prompt": f"Compute: {i}+{3 * i}*7-5*{i}\n", "max_tokens": 16,
               "temperature": 1.0, "n": 8, "seed": i} for i in range(64)]
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        responses = await asyncio.gather(*(http.post("/v1/completions", json=b) for b in bodies))
        assert {r.status_code for r in responses} == {200}
        assert (await http.get("/health")).status_code == 200
