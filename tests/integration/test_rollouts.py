"""`python -m training.rollouts` end to end on the demo model, tiny sizes (its own vLLM engine)."""

import json
import os
from pathlib import Path

import pytest

from training import rollouts
from training.components.jsonl import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(os.environ.get("DELIBERATE_TEST_MODEL", ROOT / "models" / "demo" / "base"))


@pytest.mark.slow
def test_rollouts_end_to_end(tmp_path):
    code = rollouts.main(["--model", str(MODEL), "--task", "arithmetic/3-5", "--problems", "4",
                          "--samples", "4", "--continuations", "2", "--max-tokens", "96",
                          "--out-dir", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    pairs = read_jsonl(tmp_path / "preferences.jsonl")
    rows = read_jsonl(tmp_path / "steps.jsonl")

    assert summary["problems"] == 4 and summary["solutions"] == 16
    assert 0 <= summary["sample_accuracy"] <= 1
    assert summary["pairs"] == len(pairs) and summary["step_rows"] == len(rows) >= 4
    for pair in pairs:
        assert set(pair) == {"prompt", "chosen", "rejected"}
        assert pair["prompt"].startswith("Compute: ") and pair["chosen"] != pair["rejected"]
    steps = 0
    for row in rows:
        assert set(row) == {"prompt", "completions", "labels", "soft_labels", "exact_labels"}
        assert len(row["completions"]) == len(row["labels"]) == len(row["soft_labels"]) >= 1
        for hard, soft in zip(row["labels"], row["soft_labels"]):
            assert hard in (0, 1) and 0.0 <= soft <= 1.0
            assert (soft == 0) == (hard == 0)
        steps += len(row["labels"])
    assert summary["steps"] == steps
    assert 0 <= summary["good_step_fraction"] <= 1
    assert 0 <= summary["hard_label_agreement_with_check_step"] <= 1
    assert summary["continuation_requests"] >= 1
