"""Training on a real base, served: `training.lora` and `training.reward` run on the Llama-3-style
BPE chat fixture (a tokenizer without a pad token, a BOS, turns ended by <|eot_id|>, the second
EOS of its generation_config), and a server of that base hot-loads what they write. What the
server computes with each adapter equals what transformers + peft compute from the same text
tokenized as training tokenized it, so training and serving read the same ids."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from tests.real_models.build import model_dir
from tests.real_models.conversations import capital_question
from tests.servers import free_port, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = model_dir("llama3-chat")
QUESTION = [{"role": "user", "content": "What is the capital of Peru?"}]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> Path:
    """A chat LoRA and an ORM, trained before the server starts (which knows neither)."""
    from training import lora, reward

    root = tmp_path_factory.mktemp("adapters")
    rng = random.Random(3)
    chats = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
             for q, a in (capital_question(rng) for _ in range(48))]
    assert lora.main(["--model", str(BASE), "--out", str(root / "capitals"), "--dataset",
                      str(write_jsonl(root / "capitals.jsonl", chats)),
                      "--max-steps", "6", "--batch-size", "8", "--lr", "5e-3"]) == 0
    rng = random.Random(4)
    pairs = []
    for _ in range(48):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        pairs.append({"prompt": f"What is {a}+{b}?", "chosen": f"{a}+{b}={a + b}",
                      "rejected": f"{a}+{b}={a + b + 1}"})
    assert reward.main(["--model", str(BASE), "--out", str(root / "orm"), "--dataset",
                        str(write_jsonl(root / "pairs.jsonl", pairs)),
                        "--max-steps", "20", "--batch-size", "8", "--lr", "5e-3"]) == 0
    return root


@pytest.fixture(scope="module")
def server(adapters, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    command = ["-m", "server", "--model", str(BASE), "--served-model-name", "llama",
               "--port", str(port), "--default-strategy", "greedy",
               "--adapter-roots", str(adapters), "--adapter-resolver-root", ""]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(command, port, log, env=env, timeout_s=300, cwd=ROOT) as url:
        yield url


def load_adapter(url: str, name: str, path: Path) -> None:
    r = httpx.post(f"{url}/v1/load_lora_adapter", timeout=120,
                   json={"lora_name": name, "lora_path": str(path)})
    assert r.status_code == 200, r.text


def peft_model(adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), adapter).eval()


def served_first_token(url: str, model: str) -> tuple[str, float, str]:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
        "model": model, "messages": QUESTION, "max_tokens": 24, "temperature": 0,
        "logprobs": True, "top_logprobs": 1})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    first = choice["logprobs"]["content"][0]
    return first["token"], first["logprob"], choice["finish_reason"]


def test_a_lora_trained_on_the_bpe_base_is_hot_loaded_and_served_as_trained(server, adapters):
    from training.components.base_model import load_tokenizer

    manifest = json.loads((adapters / "capitals" / "deliberate_manifest.json").read_text())
    assert manifest["train"]["precision"] == "fp32"  # a CPU
    base_token, base_logprob, _ = served_first_token(server, "llama")
    load_adapter(server, "capitals", adapters / "capitals")
    token, logprob, finish = served_first_token(server, "capitals")
    assert finish == "stop"  # the reply ends at the end of turn it was trained to write
    assert logprob != pytest.approx(base_logprob, abs=1e-4)  # the adapter is applied
    # the served conversation, tokenized as training tokenized it, through transformers + peft
    tokenizer = load_tokenizer(BASE)
    text = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        top = peft_model(adapters / "capitals")(ids).logits[0, -1].log_softmax(-1).max(-1)
    assert tokenizer.decode([top.indices.item()]) == token
    assert logprob == pytest.approx(top.values.item(), abs=1e-3)


def test_an_orm_trained_on_the_bpe_base_serves_the_score_it_was_trained_to_give(
        server, adapters):
    from training.components.base_model import load_tokenizer
    from verifiers.reward_format import good_probability, step_query

    manifest = json.loads((adapters / "orm" / "deliberate_manifest.json").read_text())
    assert manifest["metrics"]["eval_pairs"] > 0
    load_adapter(server, "orm", adapters / "orm")  # the `orm` verifier's adapter
    r = httpx.post(f"{server}/v1/verify", timeout=120, json={
        "prompt": "What is 3+4?", "completion": "3+4=7", "verifiers": {"orm": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["verifier_errors"] == {}
    served = r.json()["verifier_scores"]["orm"]
    # the same text, tokenized as training tokenized it (a BOS first), through transformers + peft
    tokenizer = load_tokenizer(BASE)
    ids = tokenizer(step_query("What is 3+4?", ["3+4=7"]), return_tensors="pt")["input_ids"]
    assert ids[0, 0].item() == tokenizer.bos_token_id
    with torch.no_grad():
        top = peft_model(adapters / "orm")(ids).logits[0, -1].log_softmax(-1).topk(20)
    names = tokenizer.convert_ids_to_tokens(top.indices.tolist())
    assert served == pytest.approx(good_probability(dict(zip(names, top.values.tolist()))),
                                   abs=1e-3)
