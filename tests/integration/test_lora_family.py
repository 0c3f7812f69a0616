"""The LoRA family of `training.lora --method` on the real engine: an AdaLoRA run exported as a
plain LoRA with per-module ranks loads like any adapter and serves what peft's PeftModel of the
export generates; a DoRA adapter is refused with the fix; DoRA's merged export is refused as an
adapter, starts a server with --model and serves what transformers generates from the merged
directory (Delta-LoRA's, written the same way, is checked in transformers)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.integration.conftest import DEMO_MODEL, SERVED_NAME, own_server

pytestmark = pytest.mark.slow

PROMPTS = ["Compute: 2+3\n", "Compute: 48+17*3-29*2+11\n", "Numbers: 3 7 25 50 Target: 353\n",
           "Compute: 9*8-7\n"]
MAX_TOKENS = 40
# logits: two bfloat16 steps at the demo's logit sizes (vLLM's CPU path runs the float32 demo in
# bfloat16, and its kernels break a near-tie either way); the base's own answers under a
# trained member of the family are 10+ below
TIE = 0.25
STEPS = 20
ADALORA_INIT_R, ADALORA_R = 8, 4


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
        yield client


def one_thread(fn, *args):
    """`fn(*args)` with one intra-op thread in this (worker) thread. On this 2-core machine, with
    the engine or another run busy, a training step of the demo model took 4.4 s on two
    threads and 0.29 s on one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


async def train(root, method: str, *flags: str):
    """`training.lora --method METHOD` for STEPS steps on a parrot's data (a high lr, so the
    model's answers move far from the base's); returns the output directory and manifest."""
    from training import lora

    data = root / "parrot.jsonl"
    rows = [{"prompt": "Compute: 2+3\n", "completion": "banana banana"}] * 48
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = root / f"lora-{method}"
    rc = await asyncio.to_thread(one_thread, lora.main, [
        "--model", str(DEMO_MODEL), "--dataset", str(data), "--out", str(out), "--method", method,
        "--max-steps", str(STEPS), "--batch-size", "16", "--lr", "0.01", "--eval-fraction", "0.1",
        *flags])
    assert rc == 0
    return out, json.loads((out / "deliberate_manifest.json").read_text())


def greedy_gaps(load_model, served: list[tuple[str, str, str]]) -> list[float]:
    """For each (prompt, served completion, finish reason): the model `load_model()` returns run
    over the served tokens (and the end of sequence when it stopped there); the largest gap
    between a step's top logit and the served token's. 0 when the served text is the model's
    greedy text."""
    tokenizer = AutoTokenizer.from_pretrained(str(DEMO_MODEL))
    model = load_model().eval()
    gaps = []
    with torch.no_grad():
        for prompt, text, finish in served:
            prompt_ids = tokenizer(prompt)["input_ids"]  # as the server encodes it
            new = tokenizer(text, add_special_tokens=False)["input_ids"]
            new += [tokenizer.eos_token_id] if finish == "stop" else []
            logits = model(input_ids=torch.tensor([prompt_ids + new])).logits[0].float()
            rows = logits[len(prompt_ids) - 1:len(prompt_ids) - 1 + len(new)]
            chosen = rows[torch.arange(len(new)), torch.tensor(new)]
            gaps.append((rows.max(dim=-1).values - chosen).max().item())
    return gaps


def bf16_model(path):
    """How vLLM's CPU path runs the float32 demo and its exports: bfloat16."""
    return lambda: AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.bfloat16)


def bf16_peft_model(adapter):
    def load():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(DEMO_MODEL), dtype=torch.bfloat16)
        # the adapter in bfloat16 too, as vLLM casts it to the model's dtype
        return PeftModel.from_pretrained(base, str(adapter), autocast_adapter_dtype=False)
    return load


def held_out_loss(adapter, data) -> float:
    """The loss of the exported adapter (float32, peft) on a row of `data`, tokenized as the
    recipe tokenizes it: every row of the parrot's data is the same, so this is the held-out
    loss the recipe measured on the AdaLoRA model before exporting it."""
    from peft import PeftModel

    from training.components.base_model import load_tokenizer, stop_ids
    from training.components.sft_data import DatasetSpec, load_mixture, tokenize_row

    tokenizer = load_tokenizer(DEMO_MODEL)
    row = tokenize_row(load_mixture([DatasetSpec.parse(str(data))], 0)[0], tokenizer, 256,
                       stop_ids(DEMO_MODEL, tokenizer))
    base = AutoModelForCausalLM.from_pretrained(str(DEMO_MODEL), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([row["input_ids"]]),
                     labels=torch.tensor([row["labels"]])).loss.item()


async def complete_all(http: httpx.AsyncClient, model: str) -> list[tuple[str, str, str]]:
    """PROMPTS' greedy completions by `model`, asked together (the engine batches them)."""
    async def complete(prompt: str) -> tuple[str, str, str]:
        r = await http.post("/v1/completions", json={"model": model, "prompt": prompt,
                                                     "max_tokens": MAX_TOKENS, "temperature": 0})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        return prompt, choice["text"], choice["finish_reason"]
    return list(await asyncio.gather(*(complete(prompt) for prompt in PROMPTS)))


async def assert_serves_its_own_greedy_text(load_model, served, base_served) -> None:
    gaps = await asyncio.to_thread(one_thread, greedy_gaps, load_model, served)
    # every served token is the model's greedy choice, or within a near-tie of it
    assert max(gaps) <= TIE, (gaps, served)
    # and training moved the model: the base's answers differ, and are far from its greedy
    # ones, so the check above tells the trained model from the base
    assert [text for _, text, _ in served] != [text for _, text, _ in base_served]
    base_gaps = await asyncio.to_thread(one_thread, greedy_gaps, load_model, base_served)
    assert max(base_gaps) > 10 * TIE, (base_gaps, base_served)


async def test_an_adalora_export_loads_and_serves_what_peft_generates(server, http):
    out, manifest = await train(server.adapter_root, "adalora", "--adalora-init-r",
                                str(ADALORA_INIT_R), "--r", str(ADALORA_R))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and not config["use_dora"]
    ranks = config["rank_pattern"]
    assert ranks == manifest["rank_pattern"] and len(ranks) == 4 * 7
    assert config["alpha_pattern"] == ranks and max(ranks.values()) <= ADALORA_INIT_R
    # the budget pruned the ranks from --adalora-init-r to --r a module on average, unevenly (a
    # module it emptied keeps one zero rank)
    weights = load_file(str(out / "adapter_model.safetensors"))
    live = sum(int(a.abs().sum(dim=1).gt(0).sum()) for key, a in weights.items()
               if key.endswith("lora_A.weight"))
    assert 0 < live <= ADALORA_R * len(ranks) and len(set(ranks.values())) > 1
    # the export is the trained AdaLoRA model: its loss is the one the recipe measured before
    loss = await asyncio.to_thread(one_thread, held_out_loss, out,
                                   server.adapter_root / "parrot.jsonl")
    assert loss == pytest.approx(manifest["metrics"]["eval_loss"], rel=1e-3), loss
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "adalora",
                                                       "lora_path": str(out)})
    assert r.status_code == 200, r.text
    try:
        served = await complete_all(http, "adalora")
        base = await complete_all(http, SERVED_NAME)
        await assert_serves_its_own_greedy_text(bf16_peft_model(out), served, base)
    finally:
        r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "adalora"})
        assert r.status_code == 200, r.text


def write_dora_adapter(out) -> None:
    """A DoRA adapter as peft writes it (LoraConfig(use_dora=True)), on the demo base."""
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(str(DEMO_MODEL), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"],
                                            use_dora=True, task_type="CAUSAL_LM"))
    model.save_pretrained(str(out), safe_serialization=True)


async def test_a_dora_adapter_is_refused_with_the_way_to_serve_it(server, http):
    out = server.adapter_root / "dora-adapter"
    await asyncio.to_thread(one_thread, write_dora_adapter, out)
    assert json.loads((out / "adapter_config.json").read_text())["use_dora"] is True
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "dora-adapter",
                                                       "lora_path": str(out)})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert "DoRA" in error["message"] and "merge" in error["message"]
    assert "--model" in error["message"] and "training.lora --method dora" in error["message"]
    models = (await http.get("/v1/models")).json()["data"]
    assert "dora-adapter" not in {m["id"] for m in models}


async def test_merged_exports_serve_with_model_what_transformers_generates(
        server, http, tmp_path_factory):
    """DoRA and Delta-LoRA (W moved from step 0) are trained; DoRA's export is served by an
    engine of its own. Delta-LoRA's export is written by the same save_merged (the same files,
    the same config), so a second engine start (~45 s here) would test the same serving path:
    its weights are checked against the base's answers in transformers instead."""
    dora, dora_manifest = await train(server.adapter_root, "dora")
    delta, delta_manifest = await train(server.adapter_root, "delta_lora",
                                        "--delta-start-step", "0", "--lora-dropout", "0")
    for out, manifest in ((dora, dora_manifest), (delta, delta_manifest)):
        assert manifest["served_as"] == "merged model" and f"--model {out}" in manifest["serve"]
        assert not (out / "adapter_config.json").exists()
    assert sorted(p.name for p in dora.iterdir()) == sorted(p.name for p in delta.iterdir())
    assert (json.loads((dora / "config.json").read_text())
            == json.loads((delta / "config.json").read_text()))
    # given as an adapter, a merged export is refused with the way to serve it
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "merged-dora",
                                                       "lora_path": str(dora)})
    assert r.status_code == 400, r.text
    assert f"python -m server --model {dora.resolve()}" in r.json()["error"]["message"]
    base = await complete_all(http, SERVED_NAME)
    # its own engine on the merged directory, without LoRA (nothing to load into it)
    with own_server(tmp_path_factory, "--no-enable-lora", model=dora) as merged:
        assert not merged.trained_demo_model
        async with httpx.AsyncClient(base_url=merged.url, timeout=300) as client:
            served = await complete_all(client, SERVED_NAME)
            # the demo's chat template came along: a chat request is answered
            r = await client.post("/v1/chat/completions", json={
                "model": SERVED_NAME, "messages": [{"role": "user", "content": PROMPTS[0]}],
                "max_tokens": 8, "temperature": 0})
            assert r.status_code == 200, r.text
    await assert_serves_its_own_greedy_text(bf16_model(dora), served, base)
    # Delta-LoRA's merged weights moved the model as far: the base's answers are far from its
    # greedy ones
    base_gaps = await asyncio.to_thread(one_thread, greedy_gaps, bf16_model(delta), base)
    assert max(base_gaps) > 10 * TIE, base_gaps
