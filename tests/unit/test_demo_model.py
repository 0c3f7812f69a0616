"""The committed demo base model and the recipe that builds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from adapters.manifest import FINGERPRINT_KEY, MANIFEST_NAME, model_fingerprint
from training.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "models" / "demo" / "base"


def test_committed_model_dir_is_complete_and_small():
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "generation_config.json"]:
        assert (BASE / name).is_file(), f"missing {name}; rebuild with training.pretrain"
    config = json.loads((BASE / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] in (32, 64, 80, 96, 112, 128)  # vLLM CPU attention
    assert config["dtype"] == "float32"
    assert (BASE / "model.safetensors").stat().st_size <= 15 * 2**20
    total = sum(f.stat().st_size for f in (ROOT / "models").rglob("*") if f.is_file())
    assert total < 25 * 2**20
    assert (ROOT / "models" / "demo" / "README.md").is_file()


def test_committed_adapters_carry_the_fingerprint_of_the_committed_base():
    manifests = sorted((ROOT / "models" / "demo" / "adapters").glob(f"*/{MANIFEST_NAME}"))
    # arithmetic, countdown, difficulty, long_arithmetic, orm, physics, prm, prm_solvable
    assert len(manifests) == 8
    for path in manifests:
        assert json.loads(path.read_text())[FINGERPRINT_KEY] == model_fingerprint(BASE), path


def test_committed_tokenizer_round_trips_the_prompt_formats():
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    config = json.loads((BASE / "config.json").read_text())
    assert len(tokenizer) == config["vocab_size"]
    assert tokenizer.eos_token_id == config["eos_token_id"]
    for task in TASKS.values():
        for problem, solution in task.generate_worked(seed=5, count=5):
            text = problem.prompt + "\n" + solution
            ids = tokenizer(text).input_ids
            assert len(ids) == len(text)  # one token per character, no BOS
            assert tokenizer.decode(ids) == text
            chat = tokenizer.apply_chat_template(
                [{"role": "user", "content": problem.prompt}], tokenize=False,
                add_generation_prompt=True)
            assert chat == problem.prompt + "\n"


def test_training_examples_tokenize_as_the_tokenizer_does():
    from training.components.pretrain_data import WorkedSolutions, make_examples
    from training.components.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    examples = make_examples({"arithmetic": 3, "countdown": 3}, seed=0, workers=1)
    dataset = WorkedSolutions(examples, tokenizer)
    for (prompt, completion), row in zip(examples, dataset):
        expected = tokenizer(prompt + completion).input_ids + [tokenizer.eos_token_id]
        assert row["input_ids"] == expected
        masked = sum(label == -100 for label in row["labels"])
        assert masked == len(prompt) and row["labels"][-1] == tokenizer.eos_token_id


@pytest.mark.slow
def test_pretrain_runs_a_few_steps_on_cpu_and_reloads(tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "base"
    command = [sys.executable, "-m", "training.pretrain",
               "--config", str(ROOT / "training" / "configs" / "pretrain_demo.yaml"),
               "--out", str(out), "--device", "cpu", "--max-steps", "3", "--batch-size", "8",
               "--arithmetic-count", "64", "--countdown-count", "32", "--workers", "1",
               "--hidden-size", "64", "--intermediate-size", "128", "--layers", "1",
               "--heads", "1", "--warmup-steps", "1"]
    subprocess.run(command, cwd=ROOT, check=True, timeout=120)
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 1 and model.config.use_cache
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["steps"] == 3 and manifest["device"] == "cpu"
    inputs = tokenizer("Compute: 1+2\n", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]
