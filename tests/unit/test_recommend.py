"""`python -m training.recommend`: three typical situations get the method the rules table says,
with its reason; memory decides between LoRA, QLoRA and full tuning; measured figures are cited
only from a committed table."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from training import recommend as recipe
from training.components.method_choice import (ALTERNATIVES, RULES, SERVED, Situation, fits,
                                               recommend, training_gib)


def answer(tmp_path, **situation):
    values = dict(examples=20_000, parameters=7e9, memory_gib=24, compute="medium",
                  goal="one_task")
    return recommend(Situation(**{**values, **situation}), tmp_path / "no-table.json")


def test_many_tasks_on_one_gpu_get_lora_adapters(tmp_path):
    got = answer(tmp_path, goal="many_tasks")
    assert got.method == "lora"
    assert "one adapter per task" in got.why and "side by side" in got.why
    assert {name for name, _ in got.alternatives} == {"rslora", "adalora"}
    assert "served as adapter" in got.text() and "--method lora" in got.text()


def test_keeping_generic_skills_of_a_70b_model_on_80_gib_gets_qlora(tmp_path):
    got = answer(tmp_path, goal="keep_generic", parameters=70e9, memory_gib=80)
    assert got.method == "qlora"  # the bf16 base alone is 130 GiB
    assert not fits("lora", Situation(20_000, 70e9, 80, "medium", "keep_generic"))
    assert "4-bit" in got.why and "full-precision base" in got.why


def test_one_task_with_much_data_and_compute_gets_full_fine_tuning(tmp_path):
    got = answer(tmp_path, parameters=1e9, memory_gib=80, examples=200_000, compute="high")
    assert got.method == "finetune"
    assert "training.finetune" in got.text() and "--train-layers" in got.why
    # the same data with a medium budget stays low-rank
    assert answer(tmp_path, parameters=1e9, memory_gib=80, examples=200_000).method == "dora"


@pytest.mark.parametrize("situation, method", [
    (dict(examples=500, compute="low"), "lora"),  # little data, one task
    (dict(examples=500, goal="many_tasks", parameters=13e9, memory_gib=40), "prompt"),
    (dict(examples=500, goal="many_tasks", parameters=1e9), "lora"),  # below prompt tuning's scale
    (dict(examples=200_000, compute="high", goal="keep_generic", parameters=1e9, memory_gib=80),
     "finetune"),
    (dict(memory_gib=12), "qlora"),
    (dict(parameters=70e9, memory_gib=8), None),
])
def test_other_situations(tmp_path, situation, method):
    assert answer(tmp_path, **situation).method == method


def test_nothing_fits_says_why(tmp_path):
    got = answer(tmp_path, parameters=70e9, memory_gib=8)
    assert "No method fits" in got.text() and "smaller model or more memory" in got.text()


def test_memory_estimates_follow_the_bytes_per_parameter():
    s = Situation(0, 2 ** 30, 1, "low", "one_task", weight_bytes=2)
    assert training_gib("finetune", s) == 16
    assert training_gib("lora", s) == pytest.approx(2 + 0.006 * 16)
    assert training_gib("qlora", s) == pytest.approx(4.127 / 8 + 0.006 * 16)


def test_every_rule_and_alternative_names_a_method_the_project_trains():
    methods = {rule.method for rule in RULES} | {name for alts in ALTERNATIVES.values()
                                                for name, _ in alts}
    assert methods <= set(SERVED)
    assert {"lora", "rslora", "adalora", "qlora", "dora", "delta_lora", "finetune",
            "prompt", "ptuning"} <= methods


def test_without_a_committed_table_no_figure_is_cited(tmp_path):
    got = answer(tmp_path)
    assert got.table is None and got.measured == []
    assert "no committed table" in got.text()


def test_a_committed_table_is_cited_for_the_method_and_its_alternatives(tmp_path):
    table = tmp_path / "peft.json"
    rows = [{"method": "dora", "domain_accuracy": 0.61}, {"method": "lora", "peak_rss_mb": 900},
            {"method": "prefix", "domain_accuracy": 0.2}]
    table.write_text(json.dumps({"rows": rows}))
    got = recommend(Situation(20_000, 7e9, 24, "medium", "one_task"), table)
    assert got.method == "dora" and got.measured == rows[:2]
    assert "dora (?): domain 61%" in got.text() and "prefix" not in got.text()


def test_the_cli_counts_a_model_directorys_parameters(capsys):
    assert recipe.main(["--config", "training/configs/recommend_demo.yaml", "--json",
                        "--table", "/nonexistent/peft.json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "dora" and out["table"] is None
    # models/demo/base has 3,264,768 parameters (its training manifest); fp32, 16 bytes each
    assert out["memory_gib"]["finetune"] == pytest.approx(16 * 3_264_768 / 2 ** 30)


def test_the_cli_names_what_is_missing(capsys):
    with pytest.raises(SystemExit):
        recipe.main([])
    err = capsys.readouterr().err
    assert "--examples" in err and "--params N or --model DIR" in err and "--memory-gib" in err


def test_a_cited_row_reads_as_its_figures(tmp_path):
    from training.components.method_choice import measured_line

    line = measured_line({"method": "lora", "served_as": "adapter", "domain_accuracy": 0.1875,
                          "domain_accuracy_base": 0.2375, "generic_accuracy": 0.825,
                          "generic_accuracy_base": 0.85, "trainable_parameters": 315392,
                          "peak_rss_mb": 1206.2, "train_s": 76.5, "artifact_bytes": 1268760,
                          "throughput_vs_base": 0.641})
    assert line == ("lora (adapter): domain 19% (base 24%), generic 82% (base 85%), 315,392 "
                    "trainable, peak RSS 1206 MB, 76 s, artifact 1.27 MB, serving 0.64x the "
                    "base's tokens/s")


def test_the_measured_table_is_found_from_the_package_whatever_the_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = recommend(Situation(20_000, 7e9, 24, "medium", "one_task"))
    assert got.table == "training/data/peft.json"
    assert {row["method"] for row in got.measured} >= {"dora", "lora"}
    assert "Measured (training/data/peft.json):" in got.text()


def test_the_measured_table_ships_as_package_data():
    root = Path(__file__).resolve().parents[2]
    shipped = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["training"]
    table = root / "training" / "data" / "peft.json"
    assert table.is_file() and any(table.relative_to(root / "training").match(glob)
                                   for glob in shipped)
