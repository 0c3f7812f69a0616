"""A swarm in remote mode: the remote engine against two scripted vLLM replicas
(tests/upstream_fakes.py), under the real app. Every specialist's engine calls stay on one
replica (its request scope, server/reasoning/swarm.py), with its prefix cache and its adapter."""

from __future__ import annotations

import httpx

from server.app import create_app
from server.settings import Settings
from tests.unit.test_remote_engine import A, B, started
from tests.upstream_fakes import FakeReplica
from tests.unit.test_remote_engine import tokenizer  # noqa: F401  (the module's fixture)

COMPOSITES = ["Numbers: 3 [Compute: 2*4-1] 25 50 Target: [Compute: 17*3+48]",
              "Numbers: [Compute: 9-2] 4 [Compute: 1+1] Target: [Compute: 72*58-13+9*4-27+66]",
              "Numbers: 1 2 Target: [Compute: 5*5]"]


async def test_each_specialist_keeps_its_calls_on_one_replica(tokenizer):  # noqa: F811
    fakes = tuple(FakeReplica(url, reply="1+1=2\nAnswer: 2", tokenizer=tokenizer,
                              max_model_len=512) for url in (A, B))
    engine = await started(tokenizer, *fakes)
    app = create_app(Settings(default_strategy="greedy", swarm_router=""), engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for question in COMPOSITES:
                for fake in fakes:
                    fake.bodies.clear()
                response = await client.post("/v1/chat/completions", json={
                    "model": "demo", "messages": [{"role": "user", "content": question}],
                    "max_tokens": 32,
                    "reasoning": {"strategy": "swarm", "verifiers": {"logic": 1},
                                  "swarm": {"routes": {"Compute": "arithmetic",
                                                       "Numbers": "countdown"}}}})
                assert response.status_code == 200, response.text
                parts = response.json()["reasoning"]["swarm"]["parts"]
                where: dict[str, set[str]] = {}
                for fake in fakes:
                    for body in fake.bodies:
                        where.setdefault(body["model"], set()).add(fake.url)
                # both specialists were called, each on exactly one replica
                assert set(where) == {"arithmetic", "countdown"}, where
                assert all(len(urls) == 1 for urls in where.values()), where
                calls = sum(len(f.bodies) for f in fakes)
                assert calls == sum(p["engine_calls"] for p in parts) == len(parts)
