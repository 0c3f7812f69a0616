"""`reasoning.context` through the HTTP API (bounded-context reasoning, search/chunking.py), on
an arithmetic oracle whose window is the demo model's 512 positions and which reads only its
prompt (tests.search_fakes.ArithmeticOracle)."""

from __future__ import annotations

import pytest

from server.settings import Settings
from tests.search_fakes import ArithmeticOracle
from tests.unit.test_confidence_api import served
from training.tasks import arithmetic, long_arithmetic

LONG = long_arithmetic.generate(3, 1, 60)[0]  # prompt + solution: about 1.8 windows
SOLUTION = arithmetic.solution(LONG)


def settings() -> Settings:
    return Settings(search_verifiers={"logic": 1.0}, difficulty_estimators=[],
                    max_beam_width=4)


def chat(question: str = LONG.prompt, **reasoning) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": question}],
            "reasoning": reasoning}


def test_the_problem_outgrows_the_window():
    assert len(LONG.prompt) + len(SOLUTION) > 1.5 * 512


@pytest.mark.parametrize("carry", ["state", "last"])
async def test_a_greedy_path_longer_than_the_window_is_answered_in_chunks(carry):
    body = chat(strategy="greedy", context={"chunk_tokens": 200, "carry": carry,
                                            "carry_tokens": 60})
    r = await served(settings(), ArithmeticOracle(), body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["choices"][0]["message"]["content"] == SOLUTION
    assert out["choices"][0]["finish_reason"] == "stop"
    context = out["reasoning"]["context"]
    assert context["chunks"] >= 3 and context["carry"] == carry
    assert context["max_context_tokens"] <= len(LONG.prompt) + 1 + 200
    assert out["usage"]["completion_tokens"] == len(SOLUTION) + 1  # every token, EOS too
    assert r.headers["x-reasoning-strategy"] == "greedy"


async def test_without_context_the_same_request_cannot_ask_for_the_room():
    body = chat() | {"max_tokens": 600}
    r = await served(settings(), ArithmeticOracle(), body)
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["param"]


async def test_a_search_runs_in_chunks_with_its_steps_scored():
    body = chat(strategy="beam", beam_width=2, n_candidates=2,
                context={"chunk_tokens": 150, "carry": "state"}) | {"temperature": 1.0}
    engine = ArithmeticOracle()
    r = await served(settings(), engine, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert arithmetic.check(LONG, out["choices"][0]["message"]["content"])
    info = out["reasoning"]
    assert info["context"]["chunks"] >= 3
    # every step searched (2 candidates per beam), none finished greedily past the usual 16
    assert len(info["steps"]) == SOLUTION.count("\n") + 1 > 16
    assert sum(params.n == 2 for _, params in engine.calls) >= len(info["steps"])
    assert all(step["scores"]["logic"] == 1.0 for step in info["steps"])
    # 4 live samples, each within the prompt and one chunk
    assert info["context"]["peak_kv_tokens"] <= 4 * (len(LONG.prompt) + 1 + 150)


@pytest.mark.parametrize("context, param, words", [
    ({"chunk_tokens": 50, "carry_tokens": 50}, "reasoning.context.chunk_tokens",
     "not larger than its carry-over"),
    ({"carry_tokens": 400}, "reasoning.context.carry_tokens", "cannot fit the model's window"),
    ({"chunk_tokens": 500}, "reasoning.context.chunk_tokens", "chunk_tokens <= "),
    ({"chunk_tokens": 0}, "reasoning.context.chunk_tokens", "greater than or equal to 1"),
    ({"carry": "summary"}, "reasoning.context.carry", "'last' or 'state'"),
    ({"carry": "state", "state": "chess"}, "reasoning.context.state", "choose one of"),
])
async def test_settings_that_cannot_work_are_400s_that_say_what_to_change(context, param,
                                                                           words):
    r = await served(settings(), ArithmeticOracle(), chat(strategy="greedy", context=context))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"]


async def test_a_question_no_state_plugin_reads_is_a_400():
    r = await served(settings(), ArithmeticOracle(),
                     chat("Tell me a story", strategy="greedy", context={"carry": "state"}))
    assert r.status_code == 400
    assert "no state plugin" in r.json()["error"]["message"]


@pytest.mark.parametrize("extra, param", [({"logprobs": True}, "logprobs"),
                                          ({"reasoning": {"strategy": "deepconf",
                                                          "context": {}}}, "reasoning.context")])
async def test_what_a_chunked_path_cannot_honour_is_a_400(extra, param):
    body = chat(strategy="greedy", context={}) | extra
    r = await served(settings(), ArithmeticOracle(), body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
