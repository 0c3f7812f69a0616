"""A verifier that hangs or raises degrades the search that asked for it, within the verifier
timeout, and nothing else."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.settings import Settings
from tests.search_fakes import StepEngine

PROMPT = "Compute: 2+3*4\n"
SCRIPT = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT)


def completion(**extra) -> dict:
    return {"model": "demo", "prompt": PROMPT, "max_tokens": 32, **extra}


class Hanging:
    name = "hang"

    async def score(self, items, context):
        await asyncio.sleep(3600)


class Raising:
    name = "boom"

    async def score(self, items, context):
        raise RuntimeError("injected fault")


@pytest.mark.parametrize("settings", [Settings(
    search_verifiers={"logic": 1.0}, default_strategy="greedy", verifier_timeout_s=0.2)])
async def test_a_hanging_or_raising_verifier_degrades_its_search_within_the_timeout(
        app, client, engine):
    app.state.verify_service.registry.verifiers.update({"hang": Hanging(), "boom": Raising()})
    started = time.monotonic()
    r = await client.post("/v1/completions", json=completion(reasoning={
        "strategy": "beam", "verifiers": {"logic": 1, "hang": 1, "boom": 1}}))
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2.0  # one timeout, not one per step
    reasoning = r.json()["reasoning"]
    assert set(reasoning["verifier_errors"]) == {"hang", "boom"}
    assert reasoning["verifier_scores"] == {"logic": 1.0}
    assert r.json()["choices"][0]["text"] == "3*4=12\n2+12=14\nAnswer: 14"
