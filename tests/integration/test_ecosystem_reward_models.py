"""Reward models of the ecosystem on real engines: a Qwen2ForProcessRewardModel on vLLM's pooling
runner, a Math-Shepherd-style token PRM and a LlamaForSequenceClassification ORM, each in its own
engine beside the Qwen2 chat policy: in this process (local mode), or on `vllm serve` replicas
of their own in front of a remote-mode Deliberate (which then starts no vLLM). Either way their
scores through /v1/verify equal what transformers computes from the same conversation in each
model's own template; they score inside beam search; a reward model whose engine cannot start
degrades the requests that name it, not the server."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.real_models import reward_models as rm
from tests.real_models.build import model_dir
from tests.servers import free_port, replica_args, replica_env, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "system", "content": "Add step by step."},
            {"role": "user", "content": "What is 3+4+5?"}]
STEPS = ["3+4=7", "7+5=12", "The answer is \\boxed{12}."]
ENGINE = {"kv_cache_bytes": 32 * 2**20, "dtype": "float32"}
# name -> its kind, its fixture model, and how a `vllm serve` replica of it runs (remote mode)
REWARD_MODELS = {
    "math_prm": ("pooling_prm", "prm", ["--runner", "pooling", "--max-model-len", "256",
                                        "--pooler-config", '{"tok_pooling_type": "ALL"}']),
    "skywork": ("classifier_orm", "orm", ["--runner", "pooling"]),
    "shepherd": ("token_prm", "shepherd", []),
}


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return {"policy": model_dir("qwen2-chat"), "prm": model_dir("qwen2-prm"),
            "orm": model_dir("llama3-orm"), "shepherd": model_dir("llama3-shepherd")}


@pytest.fixture(scope="module", params=["local", "remote"])
def server(request, models, tmp_path_factory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp(request.param)
    with contextlib.ExitStack() as replicas:
        if request.param == "local":
            engine, reward_models = in_process(models, tmp_path_factory.mktemp("broken"))
        else:
            engine, reward_models = on_replicas(models, replicas, logs)
        port = free_port()
        command = ["-m", "server", *engine, "--served-model-name", "qwen",
                   "--port", str(port), "--default-strategy", "greedy",
                   "--adapter-roots", str(ROOT / "models"),
                   "--reward-models", json.dumps(reward_models)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
        with running_server(command, port, logs / "server.log", env=env, timeout_s=300,
                            cwd=ROOT) as url:
            yield url


def in_process(models: dict[str, Path], broken: Path) -> tuple[list[str], dict]:
    """Local mode: each reward model in an engine of its own in this process, and one of an
    architecture vLLM does not have."""
    (broken / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForReward"],
                                                    "model_type": "llama"}))
    reward_models = {name: {"kind": kind, "engine": {"model": str(models[model]), **ENGINE}}
                     for name, (kind, model, _) in REWARD_MODELS.items()}
    reward_models["math_prm"]["engine"]["max_model_len"] = 256
    reward_models["broken"] = {"kind": "classifier_orm", "engine": {"model": str(broken)}}
    return ["--model", str(models["policy"])], reward_models


def on_replicas(models: dict[str, Path], replicas: contextlib.ExitStack, logs: Path
                ) -> tuple[list[str], dict]:
    """Remote mode: the policy and each reward model on a `vllm serve` replica of its own, and
    one reward model whose upstream nobody serves on."""
    def serve(model: Path, name: str, **args) -> str:
        port = free_port()
        return replicas.enter_context(running_server(
            replica_args(model, port, name, **args), port, logs / f"{name}.log",
            env=replica_env(), timeout_s=300, cwd=ROOT))

    reward_models = {}
    for name, (kind, model, flags) in REWARD_MODELS.items():
        url = serve(models[model], name, kv_cache_bytes=ENGINE["kv_cache_bytes"], lora=False,
                    extra=["--dtype", ENGINE["dtype"], *flags])
        reward_models[name] = {"kind": kind,
                               "engine": {"model": str(models[model]), "upstreams": [url]}}
    reward_models["broken"] = {"kind": "classifier_orm", "engine": {
        "model": str(models["orm"]), "upstreams": [f"http://127.0.0.1:{free_port()}"]}}
    policy = serve(models["policy"], "qwen")
    return ["--engine", "remote", "--model", str(models["policy"]), "--upstream", policy,
            "--upstream-start-timeout-s", "5"], reward_models


def verify(url: str, verifiers: dict, steps=STEPS, **body) -> dict:
    r = httpx.post(f"{url}/v1/verify", timeout=120, json={
        "messages": MESSAGES, "completion": "\n".join(steps), "verifiers": verifiers, **body})
    assert r.status_code == 200, r.text
    return r.json()


def step_scores(body: dict, name: str) -> list[float]:
    return [step["scores"][name] for step in body["steps"]]


def render(model: Path, reply: str) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model).apply_chat_template(
        [*MESSAGES, {"role": "assistant", "content": reply}], tokenize=False)


def test_the_pooling_prm_scores_each_step_as_transformers_does(server, models):
    body = verify(server, {"math_prm": 1})
    expected = rm.reference_pooling_prm(models["prm"], render(
        models["prm"], "".join(step + rm.SEPARATOR for step in STEPS)))
    assert step_scores(body, "math_prm") == pytest.approx(expected, abs=1e-3)
    assert body["verifier_errors"] == {}


def test_the_classifier_orm_scores_the_finished_conversation_as_transformers_does(server, models):
    body = verify(server, {"skywork": 1})
    expected = rm.reference_classifier_orm(models["orm"], render(models["orm"], "\n".join(STEPS)))
    assert step_scores(body, "skywork") == pytest.approx([1.0, 1.0, expected], abs=1e-3)


def test_the_token_prm_scores_math_shepherd_text_as_transformers_does(server, models):
    body = verify(server, {"shepherd": 1})
    assert body["verifier_errors"] == {}
    question = MESSAGES[-1]["content"]
    queries = [question + " " + "\n".join(s + rm.STEP_TAG for s in STEPS[: k + 1])
               for k in range(len(STEPS))]
    assert step_scores(body, "shepherd") == pytest.approx(
        rm.reference_token_prm(models["shepherd"], queries), abs=1e-3)


def test_reward_models_score_inside_beam_search(server):
    """A question the policy answers in one line, so that a path finishes and the ORM, which
    judges finished solutions only, scores too."""
    r = httpx.post(f"{server}/v1/chat/completions", timeout=300, json={
        "model": "qwen", "messages": [{"role": "user", "content": "What is the capital of Peru?"}],
        "max_tokens": 64, "seed": 0,
        "reasoning": {"strategy": "beam", "beam_width": 2, "n_candidates": 2,
                      "verifiers": {"math_prm": 1, "shepherd": 1, "skywork": 1}}})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    reasoning = r.json()["reasoning"]
    assert reasoning["strategy"] == "beam" and reasoning["verifier_errors"] == {}
    assert set(reasoning["verifier_scores"]) == {"math_prm", "shepherd", "skywork"}
    assert all(0.0 < s < 1.0 for s in reasoning["verifier_scores"].values())


def test_a_reward_model_that_cannot_start_degrades_only_the_requests_naming_it(server):
    body = verify(server, {"broken": 1, "math_prm": 1})
    assert "engine failed to start" in body["verifier_errors"]["broken"]
    assert set(body["verifier_scores"]) == {"math_prm"}
    r = httpx.post(f"{server}/v1/chat/completions", timeout=300, json={
        "model": "qwen", "messages": MESSAGES, "max_tokens": 48,
        "reasoning": {"strategy": "beam", "beam_width": 2, "n_candidates": 2, "max_depth": 2,
                      "verifiers": {"broken": 1, "shepherd": 1}}})
    assert r.status_code == 200, r.text
    assert "broken" in r.json()["reasoning"]["verifier_errors"]
    assert httpx.get(f"{server}/health").status_code == 200


def test_a_solution_past_a_reward_models_context_is_a_400_naming_it(server):
    r = httpx.post(f"{server}/v1/verify", timeout=120, json={
        "messages": MESSAGES, "completion": "\n".join(["3+4=7"] * 120),
        "verifiers": {"math_prm": 1}})
    assert r.status_code == 400, r.text
    assert "'math_prm'" in r.json()["error"]["message"]
    assert "maximum context length" in r.json()["error"]["message"]
    assert verify(server, {"math_prm": 1})["verifier_errors"] == {}
