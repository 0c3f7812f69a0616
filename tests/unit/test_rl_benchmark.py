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
    assert "| orm | countdown | 10 | 0.250 | 0.500 | 42.0 | 30.0 |" in text
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


def _search(greedy: float, beam: float, mcts: float) -> dict:
    return {name: {"wall_s": 1.0, "tasks": {"countdown": {"problems": 4, "accuracy": acc,
                                                          "tokens": 40.0}}}
            for name, acc in (("greedy", greedy), ("beam/3", beam), ("mcts/5", mcts))}


def test_best_adapter_has_the_highest_mean_accuracy_over_tasks() -> None:
    runs = {name: {"eval": {"a": {"accuracy": a}, "b": {"accuracy": b}}}
            for name, a, b in (("exact", 0.6, 0.2), ("orm", 0.8, 0.0), ("prm", 0.5, 0.4))}
    assert bench.best_adapter({"runs": runs}) == "prm"


@pytest.mark.parametrize("tuned, verdict", [
    (_search(0.40, 0.55, 0.60), "RL + mcts/5 0.600 against search alone (base + beam/3) 0.500 "
                                "and RL alone (greedy) 0.400: beats both"),
    (_search(0.50, 0.45, 0.50), "RL + mcts/5 0.500 against search alone (base + beam/3) 0.500 "
                                "and RL alone (greedy) 0.500: does not beat both"),
])
def test_search_report_says_whether_rl_plus_search_beats_either_alone(tuned, verdict) -> None:
    results = {"best": "exact", "search": {"demo": _search(0.30, 0.50, 0.45), "rl": tuned}}
    args = argparse.Namespace(search_problems=4)
    text = "\n".join(bench.search_report(results, args))
    assert "## Search on top of the best RL adapter (exact)" in text
    assert "| beam/3 | countdown | 0.500 |" in text
    assert f"- countdown: {verdict}." in text


def test_prm_step_trains_the_prm_reward_with_per_step_credit(tmp_path) -> None:
    args = argparse.Namespace(quick=False, steps=40, guard_every=5, guard_problems=32,
                              time_limit_min=0)
    flags = bench.train_flags(args, "prm_step", tmp_path)
    assert flags[flags.index("--reward") + 1] == "prm"
    assert flags[flags.index("--credit") + 1] == "step"
    assert flags[flags.index("--keep") + 1] == "best"
    assert bench.train_flags(args, "prm", tmp_path)[flags.index("--credit") + 1] == "sequence"
