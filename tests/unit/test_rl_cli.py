"""`python -m training.rl` configuration: the committed YAML resolves, flags override it, and
settings it cannot train with are refused with the fix (before any model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import rl
from training.components.solve_rates import informative

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "training" / "configs" / "rl_demo.yaml")


def dry_run(capsys, *argv: str) -> dict:
    assert rl.main(["--config", CONFIG, *argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def refusal(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        rl.main(["--config", CONFIG, *argv, "--dry-run"])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_the_demo_config_resolves_and_flags_override_it(capsys) -> None:
    resolved = dry_run(capsys)
    assert resolved["reward"] == "exact" and resolved["beta"] == 0.04
    assert resolved["num_generations"] == 8 and resolved["guard_action"] == "rollback"
    resolved = dry_run(capsys, "--reward", "exact:0.5,process:0.5", "--credit", "step",
                       "--process-weights", "syntax:0.3,prm:0.5,logic:0.2", "--beta", "0.1")
    assert resolved["reward"] == "exact:0.5,process:0.5" and resolved["credit"] == "step"
    assert resolved["beta"] == 0.1


@pytest.mark.parametrize("flags, fix", [
    (["--reward", "bleu"], "unknown reward 'bleu'"),
    (["--process-weights", "syntax:0.5,orm:0.5"], "--process-weights: unknown reward 'orm'"),
    (["--batch-size", "30"], "must be a multiple of --num-generations 8"),
    (["--num-generations", "1", "--batch-size", "4"], "at least 2"),
    (["--dataset", "data.jsonl"], "give demo-task problems as task:SELECTOR:COUNT"),
    (["--r", "32"], "lower --r or serve with a larger --max-lora-rank"),
    (["--keep", "best", "--guard-every", "0"], "give --guard-every N > 0"),
    (["--filter-samples", "1"], "--filter-samples must be 0 (off) or at least 2"),
])
def test_settings_it_cannot_train_with_are_refused(capsys, flags, fix) -> None:
    assert fix in refusal(capsys, *flags)


def test_a_learned_reward_without_its_adapter_names_what_to_train(capsys, tmp_path) -> None:
    err = refusal(capsys, "--reward", "prm", "--prm", str(tmp_path / "absent"))
    assert "training.prm --config training/configs/prm_demo.yaml" in err
    err = refusal(capsys, "--reward", "exact:0.5,orm:0.5", "--orm", str(tmp_path))
    assert "training.reward --config training/configs/orm_demo.yaml" in err
    # the process reward reads the PRM only when its weights name it
    dry_run(capsys, "--reward", "process", "--process-weights", "syntax:0.5,logic:0.5",
            "--prm", str(tmp_path / "absent"))
    assert "prm_demo" in refusal(capsys, "--reward", "process", "--prm", str(tmp_path / "absent"))


def test_mix_reward_reads_each_rewards_mean_from_a_log_entry() -> None:
    entry = {"reward": 0.1, "rewards/exact/mean": 0.25, "rewards/process/mean": 0.5}
    assert rl.mix_reward(entry, {"exact": 0.5, "process": 2.0}) == pytest.approx(1.125)


def test_the_filter_keeps_prompts_solved_sometimes_and_counts_the_rest() -> None:
    rows = [{"task": "arithmetic", "pid": i} for i in range(4)] + [{"task": "countdown", "pid": 9}]
    kept, counts = informative(rows, [0, 4, 1, 3, 2], samples=4)
    assert [row["pid"] for row in kept] == [2, 3, 9]
    assert counts == {"arithmetic": {"candidates": 4, "kept": 2, "always": 1, "never": 1},
                      "countdown": {"candidates": 1, "kept": 1, "always": 0, "never": 0}}


def test_a_config_value_outside_a_flags_choices_is_refused_naming_key_file_and_choices(
        capsys, tmp_path) -> None:
    # `credit: steps` had become the default argparse never checks, and trained sequence credit
    config = tmp_path / "rl.yaml"
    config.write_text(Path(CONFIG).read_text() + "credit: steps\n")
    with pytest.raises(SystemExit) as exit_info:
        rl.main(["--config", str(config), "--dry-run"])
    assert exit_info.value.code == 2
    assert f"--config {config}: credit: 'steps' is not one of 'sequence', 'step'" in (
        capsys.readouterr().err)
