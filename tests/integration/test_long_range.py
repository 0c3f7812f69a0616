"""Bounded-context reasoning (reasoning.context) on the real engine with the demo model: a
path in chunks of 32 tokens, each restarted from the expression that remains (the state
carry-over), answered greedily. (The last-m carry-over and beam with `logic` were tried here
too and failed on all three problems: the model loses its place in the expression from the
last tokens alone, and `logic` passes a true claim on the wrong operands, `1+2=3` after
`2*11=22`, after which no state follows and the chunks fall back to the last tokens.)"""

from __future__ import annotations

import httpx
import pytest

from training.tasks import arithmetic, long_arithmetic

pytestmark = pytest.mark.slow

CHUNK = 32
REASONING = {"strategy": "greedy", "context": {"chunk_tokens": CHUNK, "carry": "state"}}


async def test_a_path_of_many_chunks_is_answered_by_the_real_engine(server):
    if not server.trained_demo_model:
        pytest.skip("the known answers are the demo model's")
    problems = long_arithmetic.generate(36, 3, 8)
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
        bodies = []
        for p in problems:
            r = await http.post("/v1/chat/completions", json={
                "model": "demo", "messages": [{"role": "user", "content": p.prompt}],
                "max_tokens": 400, "temperature": 0, "reasoning": REASONING})
            assert r.status_code == 200, r.text
            bodies.append(r.json())
    right = [arithmetic.check(p, b["choices"][0]["message"]["content"])
             for p, b in zip(problems, bodies)]
    assert any(right), [b["choices"][0]["message"]["content"] for b in bodies]
    for p, body, ok in zip(problems, bodies, right):
        context, usage = body["reasoning"]["context"], body["usage"]
        # no request held more than the prompt and one chunk
        assert context["max_context_tokens"] <= usage["prompt_tokens"] + CHUNK
        if ok:  # the answer spans several chunks, and usage counts every chunk's tokens
            assert context["chunks"] >= 2
            assert usage["completion_tokens"] >= len(arithmetic.solution(p)) + 1
