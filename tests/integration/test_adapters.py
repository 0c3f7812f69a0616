"""LoRA adapters on the real engine: trained, hot-loaded, mixed in batches, refused when bad."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.integration.conftest import DEMO_MODEL, ROOT

pytestmark = pytest.mark.slow

DEMO_ADAPTERS = ROOT / "models" / "demo" / "adapters"
PROMPTS = ["Compute: 48+17*3-29*2+11\n", "Numbers: 3 7 25 50 Target: 353\n",
           "Compute: 9*8-7\n", "Numbers: 2 4 6 75 Target: 150\n", "Compute: 61-19*2+7*3\n",
           "Numbers: 1 5 9 10 100 Target: 910\n"]


def body(model: str, prompt: str, **extra) -> dict:
    return {"model": model, "prompt": prompt, "max_tokens": 48, "temperature": 0, **extra}


async def complete(http: httpx.AsyncClient, model: str, prompt: str, **extra) -> str:
    r = await http.post("/v1/completions", json=body(model, prompt, **extra))
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["text"]


@pytest.fixture
async def http(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        yield client


def assert_error(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"


async def test_adapter_trained_in_the_test_loads_over_http_and_changes_outputs(server, http):
    from training import lora

    data = server.adapter_root / "parrot.jsonl"
    rows = [{"prompt": "Compute: 2+3\n", "completion": "banana banana"}] * 64
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = server.adapter_root / "parrot"
    await asyncio.to_thread(lora.main, [
        "--model", str(DEMO_MODEL), "--dataset", str(data), "--out", str(out), "--r", "8",
        "--max-steps", "12", "--lr", "0.02", "--batch-size", "16", "--eval-fraction", "0.1"])
    assert (out / "adapter_model.safetensors").is_file()

    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "parrot", "lora_path": str(out)})
    assert r.status_code == 200, r.text
    models = {m["id"]: m for m in (await http.get("/v1/models")).json()["data"]}
    assert models["parrot"]["parent"] == "demo"
    base_text = await complete(http, "demo", "Compute: 2+3\n")
    assert base_text.startswith("2+3=5")
    tuned = await complete(http, "parrot", "Compute: 2+3\n")
    # a dozen steps move it to the trained text's letters (not yet the whole word)
    assert tuned != base_text and tuned and set(tuned) <= set("banana \n"), tuned
    r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "parrot"})
    assert r.status_code == 200, r.text


async def test_mixed_base_and_adapter_traffic_matches_separate_runs(server, http):
    # vLLM's CPU bug gives base rows the adapter in the LAST engine slot: fill all 4 slots.
    for name in ("countdown", "arithmetic"):
        r = await http.post("/v1/load_lora_adapter", json={
            "lora_name": f"{name}-2", "lora_path": str(DEMO_ADAPTERS / name)})
        assert r.status_code == 200, r.text
    # countdown and arithmetic load on demand from models/demo/adapters
    models = ["demo", "countdown", "arithmetic", "countdown-2", "arithmetic-2"]
    separate = {(m, p): await complete(http, m, p) for m in models for p in PROMPTS}
    # The adapters must matter, or this test could not tell a leaked adapter from the base.
    assert any(separate[("demo", p)] != separate[("countdown", p)] for p in PROMPTS)
    assert any(separate[("demo", p)] != separate[("arithmetic", p)] for p in PROMPTS)
    for _ in range(2):
        keys = [(m, p) for p in PROMPTS for m in models]
        mixed = await asyncio.gather(*(complete(http, m, p) for m, p in keys))
        assert dict(zip(keys, mixed)) == separate
    for name in ("countdown-2", "arithmetic-2"):
        assert (await http.post("/v1/unload_lora_adapter", json={"lora_name": name})).is_success


async def test_prompt_logprobs_with_lora_enabled_does_not_kill_the_engine(server, http):
    # the crash needs several prompt-logprobs requests in one batch
    requests = [body(model, PROMPTS[1], max_tokens=2, prompt_logprobs=1)
                for model in ("countdown", "demo", "arithmetic", "demo")]
    responses = await asyncio.gather(*(http.post("/v1/completions", json=b) for b in requests))
    for r in responses:
        assert r.status_code == 200, r.text
        positions = r.json()["choices"][0]["prompt_logprobs"]
        assert len(positions) == len(PROMPTS[1]) and positions[0] is None
        assert all(lp <= 0 for pos in positions[1:] for lp in pos.values())
    assert (await http.get("/health")).status_code == 200
    assert (await complete(http, "demo", "Compute: 2+3\n")).startswith("2+3=5")


async def test_loading_during_traffic_fails_no_request_and_unload_waits(server, http):
    long = body("countdown", PROMPTS[0], max_tokens=300, ignore_eos=True)
    traffic = [asyncio.create_task(http.post("/v1/completions", json=long)) for _ in range(4)]
    await asyncio.sleep(0.3)
    r = await http.post("/v1/load_lora_adapter", json={
        "lora_name": "countdown-copy", "lora_path": str(DEMO_ADAPTERS / "countdown")})
    assert r.status_code == 200, r.text
    # unloading an adapter with requests in flight waits for them (up to 5 s), then unloads
    r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "countdown"})
    assert r.status_code in (200, 409), r.text
    responses = await asyncio.gather(*traffic)
    assert all(resp.status_code == 200 for resp in responses), [x.text for x in responses]
    assert (await complete(http, "countdown-copy", PROMPTS[1])) == \
        (await complete(http, "countdown", PROMPTS[1]))  # reloaded on demand if it was unloaded


@pytest.fixture(scope="module")
def bad_adapters(server):
    """One broken adapter directory per failure, inside the allowed test root."""
    root = server.adapter_root / "bad"
    root.mkdir()
    good = DEMO_ADAPTERS / "countdown"

    def copy(name):
        shutil.copytree(good, root / name)
        return root / name

    corrupt = copy("corrupt")
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!")
    pickle_only = copy("pickle")
    (pickle_only / "adapter_model.safetensors").rename(pickle_only / "adapter_model.bin")
    wrong_base = copy("wrong-base")
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
               np.zeros((8, 512), np.float32)}, str(wrong_base / "adapter_model.safetensors"))
    high_rank = copy("high-rank")
    config = json.loads((high_rank / "adapter_config.json").read_text())
    (high_rank / "adapter_config.json").write_text(json.dumps({**config, "r": 64}))
    outside = server.adapter_root.parent / "outside-adapter"
    shutil.copytree(good, outside, dirs_exist_ok=True)
    (root / "link-out").symlink_to(outside)
    return {"root": root, "outside": outside}


@pytest.mark.parametrize("path, status, words", [
    ("{root}/missing", 404, "not an existing directory"),
    ("{outside}", 400, "outside the allowed adapter roots"),
    ("{root}/../../outside-adapter", 400, "outside the allowed adapter roots"),
    ("{root}/link-out", 400, "outside the allowed adapter roots"),
    ("{root}/corrupt", 400, "not a readable safetensors file"),
    ("{root}/pickle", 400, "only pickle weights"),
    ("{root}/wrong-base", 400, "another base model"),
    ("{root}/high-rank", 400, "max LoRA rank"),
])
async def test_bad_adapters_get_a_clear_4xx_and_the_server_keeps_serving(
        server, http, bad_adapters, path, status, words):
    path = path.format(root=bad_adapters["root"], outside=bad_adapters["outside"])
    r = await http.post("/v1/load_lora_adapter", json={"lora_name": "bad", "lora_path": path})
    assert_error(r, status, words)
    assert (await complete(http, "demo", "Compute: 2+3\n")).startswith("2+3=5")


async def test_duplicate_names_and_unknown_unloads_are_refused(server, http):
    r = await http.post("/v1/load_lora_adapter", json={
        "lora_name": "dup", "lora_path": str(DEMO_ADAPTERS / "arithmetic")})
    assert r.status_code == 200, r.text
    again = await http.post("/v1/load_lora_adapter", json={
        "lora_name": "dup", "lora_path": str(DEMO_ADAPTERS / "countdown")})
    assert_error(again, 409, "already loaded")
    assert_error(await http.post("/v1/unload_lora_adapter", json={"lora_name": "never"}), 404,
                 "no adapter named 'never'")
    assert (await http.post("/v1/unload_lora_adapter", json={"lora_name": "dup"})).status_code == 200
    assert (await complete(http, "demo", "Compute: 2+3\n")).startswith("2+3=5")


async def test_the_servers_own_reward_model_cannot_be_swapped_by_a_client(server, http):
    scored = {"prompt": "Compute: 2+3", "completion": "2+3=5\nAnswer: 5",
              "verifiers": {"prm": 1}}
    before = (await http.post("/v1/verify", json=scored)).json()["score"]
    assert_error(await http.post("/v1/unload_lora_adapter", json={"lora_name": "prm"}), 409,
                 "the prm verifier scores with")
    assert_error(await http.post("/v1/load_lora_adapter", json={
        "lora_name": "prm", "lora_path": str(DEMO_ADAPTERS / "difficulty")}), 409,
        "the prm verifier scores with")
    assert (await http.post("/v1/verify", json=scored)).json()["score"] == before
