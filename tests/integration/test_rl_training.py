"""A tiny RL run (`python -m training.rl`, a few GRPO steps on the demo base model): the reward and
the loss are logged and move, the reward-hacking guard checks the held-out prompts, and the
adapter written passes the server's adapter validation (what POST /v1/load_lora_adapter runs
before the engine sees it). The prompts are first filtered to those the base solves sometimes
(`--filter-samples`, vLLM offline in a child process)."""

from __future__ import annotations

import json
import math

import pytest
from safetensors import safe_open

from adapters.validation import AdapterLimits, read_base_model_info, validate_adapter
from tests.integration.conftest import DEMO_MODEL, ROOT
from training import rl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rl") / "adapter"
    # The mix of an outcome reward and the additive process reward (syntax, the demo PRM, logic),
    # the process part with per-step credit: every reward path of the trainer in one run; the
    # prompts filtered by the base's solve rate over 4 samples first.
    rl.main(["--config", str(ROOT / "training" / "configs" / "rl_demo.yaml"),
             "--model", str(DEMO_MODEL), "--prm", str(ROOT / "models/demo/adapters/prm"),
             "--orm", str(ROOT / "models/demo/adapters/orm"),
             "--dataset", "task:arithmetic/2-3:16", "--dataset", "task:countdown:16",
             "--reward", "exact:0.5,process:0.5", "--credit", "step",
             "--max-steps", "3", "--batch-size", "4", "--num-generations", "2",
             "--max-completion-length", "48", "--logging-steps", "1", "--filter-samples", "4",
             "--guard-every", "2", "--guard-problems", "2", "--out", str(out)])
    return out


def test_reward_and_loss_are_logged_and_move(run):
    log = [json.loads(line) for line in (run / "rl_log.jsonl").read_text().splitlines()]
    steps = [entry for entry in log if "loss" in entry and "rewards/process/mean" in entry]
    assert len(steps) == 3
    losses = [float(entry["loss"]) for entry in steps]
    rewards = [rl.mix_reward(entry, {"exact": 0.5, "process": 0.5}) for entry in steps]
    assert all(math.isfinite(x) for x in losses + rewards)
    assert len(set(losses)) > 1 and any(loss != 0 for loss in losses)
    assert len(set(rewards)) > 1 and all(0.0 <= r <= 1.0 for r in rewards)
    manifest = json.loads((run / "deliberate_manifest.json").read_text())
    train = manifest["train"]
    assert train["steps"] == 3 and train["reward"] == {"exact": 0.5, "process": 0.5}
    assert train["credit"] == "step" and train["beta"] > 0
    assert train["first_reward"] == pytest.approx(rewards[0], rel=1e-3)
    assert train["last_reward"] == pytest.approx(rewards[-1], rel=1e-3)


def test_the_guard_checked_the_held_out_prompts(run):
    guard = json.loads((run / "deliberate_manifest.json").read_text())["train"]["guard"]
    assert [p["step"] for p in guard["history"]] == [0, 2, 3]
    assert all(0.0 <= p["exact"] <= 1.0 and p["tokens"] > 0 for p in guard["history"])
    lines = (run / "guard.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 2, 3]


def test_the_adapter_moved_and_passes_the_servers_validation(run):
    assert not (run / "ref").exists()  # only the trained adapter is written
    with safe_open(str(run / "adapter_model.safetensors"), framework="pt") as fh:
        lora_b = [fh.get_tensor(k) for k in fh.keys() if "lora_B" in k]
    assert lora_b and any(t.abs().max().item() > 0 for t in lora_b)  # B starts at zero
    limits = AdapterLimits(allowed_roots=(run.parent,), max_rank=16, max_bytes=64 * 2**20)
    adapter = validate_adapter("rl-tiny", str(run), read_base_model_info(DEMO_MODEL), limits)
    assert adapter.rank == 8 and "q_proj" in adapter.target_modules


def test_only_prompts_solved_sometimes_were_trained_on(run):
    train = json.loads((run / "deliberate_manifest.json").read_text())["train"]
    counts = train["filter"]["tasks"]
    assert train["filter"]["samples"] == 4 and set(counts) == {"arithmetic", "countdown"}
    assert all(c["candidates"] == 16 for c in counts.values())
    assert all(c["kept"] + c["always"] + c["never"] == 16 for c in counts.values())
    # the easy arithmetic levels are mostly always solved, countdown mostly never: both dropped
    assert counts["arithmetic"]["always"] > 0 and counts["countdown"]["never"] > 0
    assert train["rows"] == sum(c["kept"] for c in counts.values()) > 0
