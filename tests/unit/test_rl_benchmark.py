"""benchmarks/rl.py: its report and its flags (the runs themselves train, see --quick)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import rl as bench


def point(step: int, proxy: float, exact: float, divergence: float, tokens: float = 40.0) -> dict:
    """One of the guard's checks, as the manifest stores it."""
    return {"step": step, "proxy": proxy, "exact": exact, "divergence": divergence,
            "tokens": tokens}


def test_report_lists_before_after_and_each_curve() -> None:
    results = {
        "date": "d", "machine": "m",
        "base": {"countdown": {"problems": 4, "accuracy": 0.25, "tokens": 42.0}},
        "runs": {"orm": {"eval": {"countdown": {"problems": 4, "accuracy": 0.5, "tokens": 30.0}},
                         "guard": {"fired_at": 10, "history": [point(0, 0.2, 0.5, 0.0),
                                                               point(10, 0.9, 0.1, 1.1)]}}}}
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


def test_best_adapter_has_the_highest_mean_accuracy_of_those_trained_past_step_0() -> None:
    def run(a: float, b: float, kept: int) -> dict:
        return {"eval": {"a": {"accuracy": a}, "b": {"accuracy": b}},
                "guard": {"rolled_back_to": kept, "history": [{"step": 40}]}}

    runs = {"exact": run(0.6, 0.2, 10), "orm": run(0.8, 0.0, 5), "prm": run(0.5, 0.4, 20),
            "mix": run(0.9, 0.9, 0)}  # kept at step 0: the base itself, not an RL adapter
    assert bench.best_adapter({"runs": runs}) == "prm"
    assert bench.best_adapter({"runs": {"mix": runs["mix"]}}) is None


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


def test_findings_name_the_best_change_the_noise_and_the_learned_proxies_divergence() -> None:
    results = {
        "base": {"countdown": {"problems": 100, "accuracy": 0.25, "tokens": 1.0}},
        "runs": {
            "exact": {"eval": {"countdown": {"accuracy": 0.20}},
                      "guard": {"fired_at": None, "rolled_back_to": 0,
                                "history": [point(0, 0.3, 0.3, 0.0), point(5, 0.2, 0.2, 0.0)]}},
            "orm": {"eval": {"countdown": {"accuracy": 0.31}},
                    "guard": {"fired_at": 5, "rolled_back_to": None,
                              "history": [point(0, 0.1, 0.3, 0.0), point(5, 0.4, 0.2, 0.4)]}}}}
    text = "\n".join(bench.findings(results))
    assert "best trained adapter orm 0.310 (+0.060), the trained adapters +0.060 to +0.060" in text
    assert "one standard error on 100 problems is 0.043" in text
    assert "step 0, the base itself, for exact:" in text
    assert ("- orm: proxy 0.100 -> 0.400 while exact 0.300 -> 0.200; largest divergence +0.400 "
            "at step 5; the guard would fire at step 5.") in text
    assert "- exact: proxy" not in text


def test_reused_adapters_say_when_they_were_trained() -> None:
    runs = {"exact": {"reused": True, "trained_at": "2026-12-03T17:20+00:00"},
            "orm": {"reused": False, "trained_at": "2026-12-03T17:40+00:00"}}
    assert bench.trained_when({"runs": runs}) == (
        " Adapters trained by an earlier run with the same settings (--reuse), then evaluated "
        "here: exact at 2026-12-03T17:20+00:00.")
    assert bench.trained_when({"runs": {"orm": runs["orm"]}}) == ""


def test_report_only_renders_the_table_and_the_curves_from_rl_json(tmp_path) -> None:
    import json

    results = json.loads((bench.RESULTS / "rl.json").read_text())
    (tmp_path / "rl.json").write_text(json.dumps(results))
    assert bench.main(["--report-only", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "rl.md").read_text()
    assert f"{results['steps']} GRPO steps per reward" in text and "![curves](rl.png)" in text
    assert (tmp_path / "rl.png").read_bytes().startswith(b"\x89PNG")
