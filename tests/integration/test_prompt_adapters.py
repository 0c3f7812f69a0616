"""Prompt adapters on the real engine: a prompt-tuning (and P-tuning) artifact trained here for a
few steps loads like an adapter, and its greedy completions equal transformers' generate with the
same virtual tokens prepended; a prefix-tuning artifact is refused with the reason."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.integration.conftest import DEMO_MODEL

pytestmark = pytest.mark.slow

PROMPTS = ["Compute: 2+3\n", "Compute: 48+17*3-29*2+11\n", "Numbers: 3 7 25 50 Target: 353\n",
           "Compute: 9*8-7\n", "Numbers: 2 4 6 75 Target: 150\n"]
MAX_TOKENS = 40
# logits: two bfloat16 steps at the demo's logit sizes (a P-tuning run here served a token
# 0.0625 below transformers' top one in bfloat16, 0.19 in float32); the base's own answers
# under a trained prompt are 10+ below
TIE = 0.25


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
        yield client


async def train(server, method: str, steps: int = 30):
    from training import prompt_tuning

    data = server.adapter_root / "parrot.jsonl"
    rows = [{"prompt": "Compute: 2+3\n", "completion": "banana banana"}] * 48
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = server.adapter_root / f"prompt-{method}"
    await asyncio.to_thread(prompt_tuning.main, [
        "--model", str(DEMO_MODEL), "--dataset", str(data), "--out", str(out),
        "--method", method, "--num-virtual-tokens", "8", "--max-steps", str(steps),
        "--batch-size", "16", "--lr", "0.3", "--eval-fraction", "0.1"])
    return out


def greedy_gaps(virtual: torch.Tensor, served: list[tuple[str, str]]) -> list[float]:
    """For each (prompt, served completion): transformers with `virtual` [n, hidden] prepended,
    run over the served tokens (and the end of sequence when it stopped there); the largest gap
    between a step's top logit and the served token's. 0 when the served text is transformers'
    greedy text. The model runs in bfloat16, as vLLM's CPU path runs this float32 model, and a
    gap of a bfloat16 rounding step is a near-tie the engine's kernels broke the other way."""
    tokenizer = AutoTokenizer.from_pretrained(str(DEMO_MODEL))
    model = AutoModelForCausalLM.from_pretrained(str(DEMO_MODEL), dtype=torch.bfloat16).eval()
    virtual = virtual.to(torch.bfloat16)
    gaps = []
    with torch.no_grad():
        for prompt, (text, finish) in served:
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            new = tokenizer(text, add_special_tokens=False)["input_ids"]
            new += [tokenizer.eos_token_id] if finish == "stop" else []
            ids = torch.tensor([prompt_ids + new])
            embeds = torch.cat([virtual[None], model.get_input_embeddings()(ids)], dim=1)
            logits = model(inputs_embeds=embeds).logits[0].float()  # [n + S, V]
            start = len(virtual) + len(prompt_ids) - 1  # the row predicting the first new token
            rows = logits[start:start + len(new)]
            chosen = rows[torch.arange(len(new)), torch.tensor(new)]
            gaps.append((rows.max(dim=-1).values - chosen).max().item())
    return gaps


async def complete(http: httpx.AsyncClient, model: str, prompt: str) -> tuple[str, str]:
    r = await http.post("/v1/completions", json={"model": model, "prompt": prompt,
                                                 "max_tokens": MAX_TOKENS, "temperature": 0})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    return choice["text"], choice["finish_reason"]


@pytest.mark.parametrize("method", ["prompt", "ptuning"])
async def test_a_trained_prompt_adapter_serves_what_transformers_generates(server, http, method):
    out = await train(server, method)
    manifest = json.loads((out / "deliberate_manifest.json").read_text())
    assert manifest["served_as"] == "prompt embeddings" and manifest["train"]["steps"] == 30
    name = f"soft-{method}"
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(out)})
    assert r.status_code == 200, r.text
    try:
        virtual = load_file(str(out / "adapter_model.safetensors"))["prompt_embeddings"]
        served = [await complete(http, name, prompt) for prompt in PROMPTS]
        gaps = await asyncio.to_thread(greedy_gaps, virtual.float(), list(zip(PROMPTS, served)))
        # every served token is transformers' greedy choice, or within a near-tie of it
        assert max(gaps) <= TIE, (gaps, served)
        # the virtual tokens matter (30 steps of a parrot's data move them): the base's own
        # answers are far from greedy under them, so the check above can tell them apart
        base = [await complete(http, "demo", prompt) for prompt in PROMPTS]
        assert base != served
        base_gaps = await asyncio.to_thread(greedy_gaps, virtual.float(), list(zip(PROMPTS, base)))
        assert max(base_gaps) > 10 * TIE, base_gaps
    finally:
        r = await http.post("/v1/unload_lora_adapter", json={"lora_name": name})
        assert r.status_code == 200, r.text


async def test_a_prefix_tuning_artifact_is_refused_with_the_reason(server, http):
    out = await train(server, "prefix", steps=1)
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "soft-prefix",
                                                       "lora_path": str(out)})
    assert r.status_code == 400, r.text
    assert "keys and values" in r.json()["error"]["message"]
