"""`python -m training.lora` configuration: YAML + flag overrides, and refusals that name the fix."""

import json

import pytest

from training import lora


@pytest.fixture
def config(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "Compute: 1+1\n", "completion": "1+1=2\nAnswer: 2"}) + "\n")
    path = tmp_path / "cfg.yaml"
    path.write_text(f"# python -m training.lora --config {path}\n"
                    f"dataset: ['{data}:2']\nout: {tmp_path / 'out'}\nr: 8\nlora-alpha: 32\n")
    return path


def dry_run(capsys, *argv) -> dict:
    assert lora.main([*argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_yaml_values_apply_and_flags_override_them(config, capsys):
    resolved = dry_run(capsys, "--config", str(config))
    assert resolved["r"] == 8 and resolved["lora_alpha"] == 32 and resolved["dataset"][0].endswith(":2")
    resolved = dry_run(capsys, "--config", str(config), "--r", "16", "--target-modules", "q_proj", "v_proj")
    assert resolved["r"] == 16 and resolved["target_modules"] == ["q_proj", "v_proj"]
    assert resolved["lora_alpha"] == 32


@pytest.mark.parametrize("flags, fix", [
    (["--r", "32"], "lower --r or serve with a larger --max-lora-rank"),
    (["--r", "0"], "outside 1..512"),
    (["--server-max-rank", "12"], "--server-max-rank must be one of"),
    (["--bias", "all"], "use --bias none"),
    (["--modules-to-save", "lm_head"], "drop --modules-to-save"),
    (["--added-tokens", "<step>"], "drop --added-tokens"),
    (["--target-modules", "q_proj", "lm_head"], "target the linear layers only"),
])
def test_unservable_settings_are_refused_with_the_fix(config, capsys, flags, fix):
    with pytest.raises(SystemExit) as exit_info:
        lora.main(["--config", str(config), *flags, "--dry-run"])
    assert exit_info.value.code == 2
    assert fix in capsys.readouterr().err


def test_unknown_yaml_key_is_named(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("rank: 8\n")
    with pytest.raises(SystemExit):
        lora.main(["--config", str(path), "--dry-run"])
    assert "unknown keys ['rank']" in capsys.readouterr().err


def test_missing_data_and_output_are_named(capsys):
    with pytest.raises(SystemExit):
        lora.main(["--dry-run"])
    err = capsys.readouterr().err
    assert "--dataset" in err and "--out" in err


def test_an_adapter_declares_its_datas_task_families_unless_told_not_to(config, capsys):
    args = lora.build_parser().parse_args(["--dataset", "x.jsonl", "--out", "o"])
    assert lora.manifest_skills(args, ["arithmetic/6-8", None])["task_families"] == ["arithmetic"]
    args = lora.build_parser().parse_args(["--dataset", "x.jsonl", "--out", "o", "--no-skills"])
    assert lora.manifest_skills(args, ["arithmetic/6-8", None]) is None
    # the chunked-arithmetic recipe declares none: it is worse than the base at short arithmetic
    resolved = dry_run(capsys, "--config", "training/configs/lora_long_arithmetic.yaml")
    assert resolved["no_skills"] is True
