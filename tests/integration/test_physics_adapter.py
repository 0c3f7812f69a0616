"""The `physics` adapter served by the real engine and answering physics problems in the task's
format (resolved by name from models/demo/adapters, as the other demo adapters are)."""

from __future__ import annotations

import httpx
import pytest

from training.tasks import physics as task
from verifiers.physics import notation

pytestmark = pytest.mark.slow

# fresh level-1 and level-2 problems (the benchmark's stream, not the training one)
PROBLEMS = task.generate(930_001, 8, 1) + task.generate(930_002, 8, 2)
# of 16: the adapter (600 steps) answers 13 of these right greedily, and every one ends with a
# readable quantity (71% of all levels on its eval set: models/demo/README); the bounds leave
# room for an engine whose arithmetic differs in the last bit
MIN_CORRECT = 10
MIN_FINISHED = 14  # answers ending with an Answer line whose quantity pint reads


async def complete(http: httpx.AsyncClient, model: str, prompt: str) -> str:
    r = await http.post("/v1/completions", json={
        "model": model, "prompt": prompt + "\n", "max_tokens": 160, "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["text"]


async def test_the_physics_adapter_answers_in_the_format_with_units(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
        answers = [await complete(http, "physics", p.prompt) for p in PROBLEMS]
        base = [await complete(http, "demo", p.prompt) for p in PROBLEMS[:4]]
        models = {m["id"] for m in (await http.get("/v1/models")).json()["data"]}
    assert "physics" in models
    finished = [task.split_steps(a) for a in answers]
    # answers end with an Answer line whose quantity pint reads (a number with a unit)
    assert sum(bool(lines and notation.read_answer(lines[-1])) for lines in finished) \
        >= MIN_FINISHED, answers
    correct = sum(task.check(p, a) for p, a in zip(PROBLEMS, answers))
    assert correct >= MIN_CORRECT, (correct, answers)
    assert base != answers[:4]  # the base never saw the format
