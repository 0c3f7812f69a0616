"""benchmarks/rl.py: its report and its flags (the runs themselves train, see --quick)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import rl as bench


def test_report_lists_before_after_and_each_curve() -> None:
    point = lambda step, proxy, exact: {"step": step, "proxy": proxy, "exact": exact,  # noqa: E731
                                        "divergence": proxy - 0.2 - (exact - 0.5), "tokens": 40.0}
    results = {
        "date": "d", "machine": "m",
        "base": {"countdown": {"problems": 4, "accuracy": 0.25, "tokens": 42.0}},
        "runs": {"orm": {"eval": {"countdown": {"problems": 4, "accuracy": 0.5, "tokens": 30.0}},
                         "guard": {"fired_at": 10, "history": [point(0, 0.2, 0.5),
                                                               point(10, 0.9, 0.1)]}}}}
    args = argparse.Namespace(quick=False, steps=10, eval_problems=4)
    text = bench.report(results, args)
    assert "| orm | countdown | 0.250 | 0.500 | 42.0 | 30.0 |" in text
    assert "### orm (orm): the guard would fire at step 10" in text
    assert "| 10 | 0.900 | 0.100 | +1.100 | 40.0 |" in text


def test_quick_training_flags_are_tiny_and_the_guard_only_logs(tmp_path) -> None:
    args = argparse.Namespace(quick=True, steps=2, guard_every=1, guard_problems=2,
                              time_limit_min=0)
    flags = bench.train_flags(args, "mix", tmp_path)
    assert flags[flags.index("--reward") + 1] == "exact:0.5,prm:0.5"
    assert flags[flags.index("--guard-action") + 1] == "log"
    assert flags[flags.index("--num-generations") + 1] == "2"
    from training import rl

    assert rl.main([*flags, "--dry-run"]) == 0  # training.rl accepts them


def test_unknown_rewards_are_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--rewards", "exact,bleu"])
    assert "choose from" in capsys.readouterr().err
