"""benchmarks.peft's bookkeeping: every method gets the same data and budget, manifests become
rows training.recommend can cite, and the report shows each column."""

from argparse import Namespace
from pathlib import Path

from benchmarks.peft import METHODS, report, row_of, train_flags
from training.components.method_choice import load_table

ARGS = Namespace(model="models/demo/base", steps=10, batch_size=4, eval_count=20,
                 concurrency=4, passes=3, throughput_tokens=32, throughput_repeat=1,
                 reuse=False, date="2026-12-03 14:45")


def flag(flags: list[str], name: str) -> list[str]:
    return [flags[i + 1] for i, f in enumerate(flags) if f == name]


def test_every_method_trains_on_the_same_rows_steps_and_evaluation():
    shared = {"--max-steps", "--batch-size", "--eval-task", "--generic-task", "--eval-count",
              "--seed", "--eval-fraction"}
    seen = {name: set() for name in shared}
    for method in METHODS:
        flags = train_flags(method, ARGS, Path("out"))
        for name in shared:
            seen[name].add(tuple(flag(flags, name)))
        domain = flag(flags, "--dataset")[0]
        assert domain.startswith("task:countdown:"), method.name
    assert all(len(values) == 1 for values in seen.values()), seen


def test_a_method_flag_overrides_the_familys_and_dapt_mixes_generic_rows():
    adalora = next(m for m in METHODS if m.name == "adalora")
    assert flag(train_flags(adalora, ARGS, Path("o")), "--r")[-1] == "8"  # argparse: last wins
    dapt = next(m for m in METHODS if m.name == "finetune_dapt")
    datasets = flag(train_flags(dapt, ARGS, Path("o")), "--dataset")
    assert datasets[0].endswith(":0.8") and datasets[1].startswith("task:arithmetic")


def manifest(served_as: str, after: str) -> dict:
    return {"metrics": {"accuracy_base": 0.2, f"accuracy_{after}": 0.3,
                        "generic_accuracy_base": {"arithmetic/3-5": 0.8},
                        f"generic_accuracy_{after}": {"arithmetic/3-5": 0.7}},
            "train": {"seconds": 12.0, "steps": 10, "lr": 0.003},
            "served_as": served_as, "trainable_parameters": 1000, "peak_rss_mb": 900.0}


def test_rows_read_the_manifests_and_the_report_and_recommend_read_the_rows(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "model.safetensors").write_bytes(b"x" * 400)
    methods = {m.name: m for m in METHODS}
    lora = row_of(methods["lora"], manifest("adapter", "adapter"), tmp_path / "none", base)
    prompt = row_of(methods["prompt"], manifest("prompt embeddings", "adapter"), tmp_path, base)
    full = row_of(methods["finetune"], manifest("model", "tuned"), tmp_path / "none", base)
    assert (lora["domain_accuracy"], lora["generic_accuracy"]) == (0.3, 0.7)
    assert full["served_as"] == "merged model" and full["domain_accuracy"] == 0.3
    assert prompt["frozen_base_bytes"] == 400  # the whole base stays frozen under a soft prompt
    lora.update(tokens_per_s=50.0, throughput_vs_base=0.9, served_accuracy=0.31)
    text = report([lora, prompt, full], ARGS, wall_s=60)
    assert "| lora | adapter | 1,000 |" in text and "0.90x" in text and "31%" in text
    table = tmp_path / "peft.json"
    table.write_text(__import__("json").dumps({"rows": [lora, prompt, full]}))
    assert [r["method"] for r in load_table(table)] == ["lora", "prompt", "finetune"]
