"""Search and routing on the real engine, the demo model and the demo PRM, through the official
`openai` client (extensions go in `extra_body`, as users send them)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from search.confidence import path_confidence, token_confidence
from tests.integration.conftest import MODEL
from tests.integration.test_disconnect import engine_busy, wait_until
from training.tasks import completion_prompt, get_task

pytestmark = pytest.mark.slow

STRATEGIES = ["greedy", "beam", "mcts", "tot", "best_of_n", "self_consistency", "deepconf"]
SMALL = {"beam": {"beam_width": 2}, "mcts": {"simulations": 4}, "tot": {"beam_width": 2},
         "best_of_n": {"n_candidates": 4}, "self_consistency": {"n_candidates": 4},
         "deepconf": {"n_candidates": 6, "warmup": 2}}


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def problem(task: str, level: int | None = None, seed: int = 5):
    return get_task(task).generate(seed, 1, level)[0]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_answers(client, strategy):
    p = problem("arithmetic", 3)
    response = client.chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=128,
        extra_body={"reasoning": {"strategy": strategy, "seed": 3, **SMALL.get(strategy, {})}})
    assert response.headers["x-reasoning-strategy"] == strategy
    body = response.parse()
    answer = body.choices[0].message.content
    assert "Answer:" in answer and body.choices[0].finish_reason == "stop"
    reasoning = body.model_extra["reasoning"]
    assert reasoning["strategy"] == strategy
    usage = body.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # every answer says how sure it is, calibrated by models/demo/confidence.json
    confidence = reasoning["confidence"]
    assert 0.0 <= confidence["value"] <= 1.0 and confidence["calibrated"] is True
    assert confidence["signals"]["tokens"] > 0
    assert body.choices[0].logprobs is None  # read by the server, not sent
    if strategy == "greedy":
        assert confidence["signals"]["tokens"] == usage.completion_tokens
    else:
        assert confidence["signals"]["verifier"] == pytest.approx(reasoning["score"], abs=1e-4)
    if strategy != "greedy":
        assert 0.0 <= reasoning["score"] <= 1.0 and reasoning["verifier_errors"] == {}
        assert set(reasoning["verifier_scores"]) == {"prm", "logic"}  # the default
        assert len(reasoning["steps"]) == len(answer.split("\n"))
        # every generated token counts; the ones not in the answer are reasoning tokens
        assert usage.completion_tokens > len(answer.split("\n"))
        assert usage.completion_tokens_details.reasoning_tokens > 0
        assert usage.completion_tokens_details.reasoning_tokens < usage.completion_tokens


def test_a_greedy_confidence_reads_the_engines_top_k_logprobs(client):
    p = problem("countdown", None)
    body = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=128,
        logprobs=True, top_logprobs=5, extra_body={"reasoning": {"strategy": "greedy"}})
    positions = body.choices[0].logprobs.content
    confs = [token_confidence([t.logprob for t in pos.top_logprobs], 5) for pos in positions]
    expected = path_confidence(confs, 16, 16)  # the server's default window and tail
    signals = body.model_extra["reasoning"]["confidence"]["signals"]
    assert signals["tokens"] == len(positions) == body.usage.completion_tokens
    for name, value in expected.as_dict().items():
        assert signals[name] == pytest.approx(value, abs=1e-3), name
    # a sure model: the sampled token's alternatives are far below it
    assert expected.mean > 3


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_max_tokens_bounds_a_searchs_answer(client, strategy):
    p = problem("arithmetic", 6)
    body = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=12,
        extra_body={"reasoning": {"strategy": strategy, "seed": 3, **SMALL[strategy]}})
    answer = body.choices[0].message.content
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    assert 0 < len(tokenizer.encode(answer, add_special_tokens=False)) <= 12, answer
    assert body.choices[0].finish_reason == "length"


def test_completions_search_with_the_exact_checker(client):
    p = problem("arithmetic", 6)
    body = client.completions.create(
        model="demo", prompt=completion_prompt(p), max_tokens=128,
        extra_body={"reasoning": {"strategy": "beam", "verifiers": {"prm": 1, "logic": 1},
                                  "seed": 1}})
    reasoning = body.model_extra["reasoning"]
    assert set(reasoning["verifier_scores"]) == {"prm", "logic"}
    assert all(set(s["scores"]) == {"prm", "logic"} for s in reasoning["steps"])


def test_auto_sends_easy_arithmetic_to_greedy_and_hard_countdown_to_mcts(client):
    def routed(p) -> tuple[str, float]:
        response = client.chat.completions.with_raw_response.create(
            model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=64,
            extra_body={"reasoning": {"strategy": "auto", "simulations": 2}})
        reasoning = response.parse().model_extra["reasoning"]
        assert reasoning["difficulty_estimator"] == "learned"
        return response.headers["x-reasoning-strategy"], reasoning["difficulty"]

    easy = [routed(problem("arithmetic", 1, seed)) for seed in range(3)]
    hard = [routed(problem("countdown", 5, seed)) for seed in range(3)]
    assert [s for s, _ in easy] == ["greedy"] * 3, easy
    assert [s for s, _ in hard] == ["mcts"] * 3, hard


def test_auto_with_escalate_runs_stages_until_the_target_or_the_budget(client):
    p = problem("arithmetic", 3)

    def ask(**reasoning):
        body = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=128,
            extra_body={"reasoning": {"strategy": "auto", "escalate": True, "seed": 3,
                                      **reasoning}})
        return body, body.model_extra["reasoning"]

    body, reasoning = ask(target_confidence=0.0)  # any answer reaches it
    (stage,) = reasoning["stages"]
    assert stage["why"].endswith("target reached: confidence "
                                 f"{stage['confidence']:.2f} >= 0") and stage["answered"]
    assert reasoning["strategy"] == stage["strategy"]
    assert body.usage.completion_tokens >= stage["tokens"] > 0

    # a target no calibrated probability reaches: every stage that fits the budget runs
    body, reasoning = ask(target_confidence=1.0, budget_tokens=800, beam_width=2,
                          simulations=4)
    stages = reasoning["stages"]
    names = [s["strategy"] for s in stages]
    start = ["greedy", "beam", "mcts"].index(names[0])
    assert names == ["greedy", "beam", "mcts"][start:start + len(names)]
    assert stages[-1]["why"].endswith(("no stage left", "tokens)")), stages
    assert reasoning["strategy"] == names[-1]
    (answered,) = [s for s in stages if s["answered"]]
    assert answered["confidence"] == max(s["confidence"] for s in stages)
    assert reasoning["confidence"]["value"] == pytest.approx(answered["confidence"], abs=1e-4)
    assert reasoning["confidence"]["calibrated"] is True
    assert body.usage.completion_tokens >= sum(s["tokens"] for s in stages)
    assert "Answer:" in body.choices[0].message.content


def test_a_search_streams_progress_then_the_answer(client):
    p = problem("arithmetic", 4)
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": p.prompt}], max_tokens=128,
        stream=True, stream_options={"include_usage": True},
        extra_body={"reasoning": {"strategy": "beam", "beam_width": 2}})
    progress, content, usage = [], [], None
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            if (delta.model_extra or {}).get("reasoning_content"):
                progress.append(delta.model_extra["reasoning_content"])
            if delta.content:
                content.append(delta.content)
        usage = chunk.usage or usage
    assert progress and content and "Answer:" in content[0]
    assert usage is not None and usage.completion_tokens > 0


async def test_a_cancelled_search_leaves_nothing_running(server):
    p = problem("countdown")
    body = {"model": "demo", "messages": [{"role": "user", "content": p.prompt}],
            "max_tokens": 256, "stream": True,
            "reasoning": {"strategy": "mcts", "simulations": 64, "max_depth": 12}}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        async with contextlib.AsyncExitStack() as connection:
            stream = await connection.enter_async_context(
                http.stream("POST", "/v1/chat/completions", json=body))
            assert stream.status_code == 200
            lines = aiter(stream.aiter_lines())
            while "reasoning_content" not in await anext(lines):
                pass  # the search is under way
        # The connection is closed mid-search.
        await wait_until(lambda: engine_busy(server) == 0, timeout_s=5)
        await asyncio.sleep(1.0)
        assert engine_busy(server) == 0  # and nothing new was started after
