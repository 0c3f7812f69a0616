"""its_hub (Red Hat's inference-time scaling library) on the demo problems, used as its README
shows: its algorithms in-process, its OpenAI-compatible LM pointed at a `vllm serve` replica.

Its reward-model interfaces take any scorer; here both are Deliberate's POST /v1/verify with the
verifiers a Deliberate search uses by default (prm x logic), so that its PRM-guided searches get
the same judge as Deliberate's own. The verify calls are counted (they are engine work: the PRM is
a LoRA of the same base model), the generated tokens are read from the replica's counters."""

from __future__ import annotations

import asyncio
import re

import httpx
from its_hub.api import AbstractOutcomeRewardModel, AbstractProcessRewardModel

# Deliberate's search verifiers when a request names none (server.settings.search_verifiers)
VERIFIERS = {"prm": 1.0, "logic": 1.0}
ANSWER = re.compile(r"Answer:\s*(-?\d+)")


def project_answer(response: str) -> str:
    """its_hub's self-consistency votes over what this maps a response to: the final answer
    (a user of its_hub writes this for their task; the demo's is `Answer: N`)."""
    found = ANSWER.findall(response or "")
    return found[-1] if found else ""


class VerifyScorer:
    """Scores (problem, solution) pairs with Deliberate's /v1/verify, counting its calls."""

    def __init__(self, base_url: str, concurrency: int = 8) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=600)
        self.calls = 0
        self.gate = asyncio.Semaphore(concurrency)

    async def one(self, prompt: str, completion: str) -> float:
        if not completion.strip():
            return 0.0
        async with self.gate:
            self.calls += 1
            r = await self.http.post("/v1/verify", json={
                "prompt": prompt, "completion": completion, "verifiers": VERIFIERS})
        r.raise_for_status()
        return float(r.json()["score"])

    async def many(self, prompt: str, completions: list[str]) -> list[float]:
        return list(await asyncio.gather(*(self.one(prompt, c) for c in completions)))

    async def aclose(self) -> None:
        await self.http.aclose()


class VerifyPRM(AbstractProcessRewardModel):
    """its_hub's process reward model interface: a partial path's aggregated score."""

    def __init__(self, scorer: VerifyScorer) -> None:
        self.scorer = scorer

    async def ascore(self, prompt: str, response_or_responses: str | list[str]):
        single = isinstance(response_or_responses, str)
        responses = [response_or_responses] if single else response_or_responses
        scores = await self.scorer.many(prompt, responses)
        return scores[0] if single else scores

    def score(self, prompt, response_or_responses):
        return asyncio.run(self.ascore(prompt, response_or_responses))


def _text(message) -> str:
    content = message.get("content") if isinstance(message, dict) else message.content
    return content if isinstance(content, str) else ""


class VerifyORM(AbstractOutcomeRewardModel):
    """its_hub's outcome reward model interface (best-of-n): a finished conversation's score."""

    def __init__(self, scorer: VerifyScorer) -> None:
        self.scorer = scorer

    async def ascore(self, messages, orchestrator=None, **kwargs):
        single = not isinstance(messages[0], list)
        conversations = [messages] if single else messages
        scores = await asyncio.gather(*(
            self.scorer.one(_text(c[0]), _text(c[-1])) for c in conversations))
        return scores[0] if single else list(scores)

    def score(self, messages, **kwargs):
        return asyncio.run(self.ascore(messages))
