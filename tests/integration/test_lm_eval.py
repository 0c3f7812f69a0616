"""lm-eval, as users run it against a served model, on the session's server: the demo tasks of
benchmarks/lm_eval_tasks/ through `local-completions` (generate_until and loglikelihood) and
`local-chat-completions`, each answer checked against the same request sent by hand."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import lm_eval  # the `dev` extra installs it
import pytest

from tests.integration.conftest import MODEL, SERVED_NAME

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "benchmarks" / "lm_eval_tasks"
LIMIT = 3


def evaluate(model: str, base_url: str, task: str, **model_args) -> dict:
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model=model, model_args={"model": SERVED_NAME, "base_url": base_url,
                                 "num_concurrent": 1, "max_retries": 1, **model_args},
        tasks=[task], limit=LIMIT, task_manager=TaskManager(include_path=str(TASKS)),
        apply_chat_template=model == "local-chat-completions", log_samples=True,
        bootstrap_iters=0)
    return out


def completions_args(server) -> dict:
    return {"base_url": f"{server.url}/v1/completions", "tokenizer_backend": "huggingface",
            "tokenizer": str(MODEL)}


def test_loglikelihood_is_the_sum_of_the_echoed_logprobs(server):
    out = evaluate("local-completions", **completions_args(server), task="demo_arithmetic_mc")
    samples = out["samples"]["demo_arithmetic_mc"]
    assert len(samples) == LIMIT
    correct = 0
    for sample in samples:
        doc = sample["doc"]
        context = doc["prompt"] + "\n"
        for choice, resp in zip(doc["choices"], sample["resps"]):
            r = httpx.post(f"{server.url}/v1/completions", json={
                "model": SERVED_NAME, "prompt": context + choice, "echo": True,
                "max_tokens": 0, "logprobs": 1, "temperature": 0}, timeout=120)
            assert r.status_code == 200, r.text
            logprobs = r.json()["choices"][0]["logprobs"]["token_logprobs"]
            # lm-eval moves the context's trailing whitespace (the newline) into the
            # continuation (api/model.py, _encode_pair); one token per character
            expected = sum(logprobs[len(doc["prompt"]):])
            assert resp[0][0] == pytest.approx(expected, abs=1e-3)
        lls = [resp[0][0] for resp in sample["resps"]]
        correct += lls.index(max(lls)) == doc["label"]
    assert out["results"]["demo_arithmetic_mc"]["acc,none"] == pytest.approx(correct / LIMIT)


def test_generate_until_reads_the_answer_of_a_greedy_completion(server):
    out = evaluate("local-completions", **completions_args(server), task="demo_arithmetic")
    for sample in out["samples"]["demo_arithmetic"]:
        r = httpx.post(f"{server.url}/v1/completions", json={
            "model": SERVED_NAME, "prompt": sample["doc"]["prompt"] + "\n", "max_tokens": 256,
            "temperature": 0}, timeout=120)
        text = r.json()["choices"][0]["text"]
        assert sample["resps"][0][0] == text
        answers = re.findall(r"Answer: (-?\d+)", text)
        assert sample["filtered_resps"][0] == (answers[0] if answers else "[invalid]")
    scores = [s["exact_match"] for s in out["samples"]["demo_arithmetic"]]
    assert out["results"]["demo_arithmetic"]["exact_match,answer"] == pytest.approx(
        sum(scores) / LIMIT)


def test_chat_completions_answer_as_a_chat_request_does(server):
    out = evaluate("local-chat-completions", f"{server.url}/v1/chat/completions",
                   "demo_arithmetic_chat")
    for sample in out["samples"]["demo_arithmetic_chat"]:
        r = httpx.post(f"{server.url}/v1/chat/completions", json={
            "model": SERVED_NAME, "max_tokens": 256, "temperature": 0,
            "messages": [{"role": "user", "content": sample["doc"]["prompt"]}]}, timeout=120)
        assert sample["resps"][0][0] == r.json()["choices"][0]["message"]["content"]
    assert "exact_match,answer" in out["results"]["demo_arithmetic_chat"]
