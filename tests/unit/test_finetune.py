"""`python -m training.finetune` on a tiny Llama: --train-layers / --train-modules choose what
learns (the rest is bit-for-bit unchanged), domain + generic data mixed by weight, and the output
is a model directory transformers (and so the server's --model) loads, with its manifest."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from adapters.manifest import read_manifest
from training import finetune
from training.components.layer_selection import parse_layers, select_trainable
from training.components.tokenizer import build_tokenizer


def tiny_llama(tie: bool = False) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=16, max_position_embeddings=256, tie_word_embeddings=tie,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(config)


@pytest.fixture
def base_dir(tmp_path):
    path = tmp_path / "base"
    tiny_llama().save_pretrained(str(path))
    build_tokenizer().save_pretrained(str(path))
    return path


def trainable(layers, modules, tie: bool = False) -> set[str]:
    return set(select_trainable(tiny_llama(tie), parse_layers(layers), modules))


def test_parse_layers_takes_indices_and_ranges():
    assert parse_layers(None) is None
    assert parse_layers(["0-2", "5"]) == {0, 1, 2, 5}
    for bad in (["a"], ["3-1"], ["-1"], ["1-"]):
        with pytest.raises(ValueError):
            parse_layers(bad)


def test_without_flags_every_parameter_learns():
    model = tiny_llama()
    assert set(select_trainable(model, None, None)) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("layers, modules, expected", [
    (["1"], None, lambda n: n.startswith("model.layers.1.")),
    (["1"], ["mlp"], lambda n: n.startswith("model.layers.1.mlp.")),
    (["1"], ["lm_head", "norm"],
     lambda n: n.startswith("model.layers.1.") or n in ("lm_head.weight", "model.norm.weight")),
    (None, ["lm_head"], lambda n: n == "lm_head.weight"),
    (None, ["self_attn.q_proj"], lambda n: n.endswith("self_attn.q_proj.weight")),
    (["0-1"], ["input_layernorm", "embed_tokens"],
     lambda n: "input_layernorm" in n or n == "model.embed_tokens.weight"),
])
def test_layers_and_modules_choose_what_learns(layers, modules, expected):
    names = {n for n, _ in tiny_llama().named_parameters()}
    assert trainable(layers, modules) == {n for n in names if expected(n)}


def test_a_tied_head_trains_the_shared_embedding():
    assert trainable(None, ["lm_head"], tie=True) == {"model.embed_tokens.weight"}


@pytest.mark.parametrize("modules, words", [(["adapter"], "match no parameter"),
                                            (None, "no parameter learns")])
def test_a_selection_that_trains_nothing_is_refused(modules, words):
    with pytest.raises(ValueError, match=words):
        select_trainable(tiny_llama(), set() if modules is None else None, modules)


def run_dry(capsys, *argv) -> dict:
    assert finetune.main([*argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def common(base_dir, tmp_path) -> list[str]:
    return ["--model", str(base_dir), "--dataset", "task:countdown:8", "--out", str(tmp_path / "o")]


def test_flags_resolve(base_dir, tmp_path, capsys):
    resolved = run_dry(capsys, *common(base_dir, tmp_path), "--train-layers", "1", "0-1",
                       "--train-modules", "mlp")
    assert resolved["train_layers"] == ["1", "0-1"] and resolved["train_modules"] == ["mlp"]
    assert resolved["lr"] == 1e-4  # full tuning's default, below LoRA's


@pytest.mark.parametrize("flags, words", [
    (["--train-layers", "2"], "the model has layers 0..1"),
    (["--train-layers", "x"], "indices or LO-HI"),
])
def test_refusals_name_the_fix(base_dir, tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit):
        finetune.main([*common(base_dir, tmp_path), *flags, "--dry-run"])
    assert words in capsys.readouterr().err


def test_missing_data_and_output_are_named(capsys):
    with pytest.raises(SystemExit):
        finetune.main(["--dry-run"])
    err = capsys.readouterr().err
    assert "--dataset" in err and "--out" in err


def test_finetune_trains_the_chosen_layers_only_and_writes_a_servable_model(base_dir, tmp_path):
    domain = tmp_path / "domain.jsonl"
    domain.write_text("".join(json.dumps({"prompt": f"Compute: {i}+{i}\n",
                                          "completion": f"{i}+{i}={2 * i}\nAnswer: {2 * i}"})
                              + "\n" for i in range(24)))
    out = tmp_path / "tuned"
    assert finetune.main([
        "--model", str(base_dir), "--out", str(out), "--seed", "7",
        "--dataset", f"{domain}:0.75", "--dataset", "task:arithmetic/1-2:16:0.25",
        "--train-layers", "1", "--train-modules", "lm_head", "--max-steps", "4",
        "--batch-size", "8", "--lr", "0.01", "--eval-fraction", "0.1",
        "--eval-task", "countdown/1", "--generic-task", "arithmetic/1", "--eval-count", "2"]) == 0

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    tuned = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    before, after = dict(base.named_parameters()), dict(tuned.named_parameters())
    assert before.keys() == after.keys()
    learned = {n for n in before if n.startswith("model.layers.1.") or n == "lm_head.weight"}
    for name in before:
        if name in learned:
            assert not torch.equal(before[name], after[name]), f"{name} did not learn"
        else:
            assert torch.equal(before[name], after[name]), f"{name} moved but was frozen"
    assert AutoTokenizer.from_pretrained(str(out)).chat_template  # what vLLM's chat needs

    manifest = read_manifest(out)
    assert manifest["method"] == "partial" and manifest["served_as"] == "model"
    assert f"--model {out}" in manifest["serve"]
    assert set(manifest["trained"]) == learned
    assert manifest["trainable_parameters"] == sum(before[n].numel() for n in learned)
    assert manifest["total_parameters"] == sum(p.numel() for p in before.values())
    assert manifest["mixture"] == {f"{domain}:0.75": 0.75, "task:arithmetic/1-2:16:0.25": 0.25}
    assert manifest["train"]["steps"] == 4
    metrics = manifest["metrics"]
    for stage in ("base", "tuned"):
        assert 0 <= metrics[f"accuracy_{stage}"] <= 1
        assert set(metrics[f"generic_accuracy_{stage}"]) == {"arithmetic/1"}
    assert metrics["eval_loss"] > 0
