"""benchmarks.studies.auto_target: auto's ratios against always-mcts, with paired bootstrap
intervals."""

import argparse
import dataclasses

import pytest

from benchmarks.harness.chat import Outcome
from benchmarks.studies.auto_target import Ratios, bootstrap, met, paired, ratios, report

BASE = Outcome(config="", verifiers="learned", problem="", task="countdown", bucket="countdown",
               correct=False, strategy="mcts", difficulty=None, difficulty_estimator=None,
               completion_tokens=0, reasoning_tokens=0, engine_calls=1, nodes=0, time_s=0.0,
               busy_s=0.0, latency_s=0.0)


def outcome(config: str, problem: str, correct: bool, tokens: int) -> Outcome:
    return dataclasses.replace(BASE, config=config, problem=problem, correct=correct,
                               completion_tokens=tokens)


def run(rows: list[tuple[bool, int, bool, int]]) -> dict[str, list[Outcome]]:
    """(auto right, auto tokens, mcts right, mcts tokens) per problem -> outcomes by config;
    mcts listed in reverse so that pairing must go by problem, not position."""
    return {"mcts/5": [outcome("mcts/5", f"p{i}", r[2], r[3]) for i, r in enumerate(rows)][::-1],
            "auto": [outcome("auto", f"p{i}", r[0], r[1]) for i, r in enumerate(rows)]}


def test_ratios_pair_each_problem_and_compare_totals():
    pairs = paired(run([(True, 50, True, 300), (False, 100, True, 100), (True, 10, False, 200)]))
    assert [(a.problem, m.problem) for a, m in pairs] == [("p0", "p0"), ("p1", "p1"),
                                                          ("p2", "p2")]
    assert ratios(pairs) == Ratios(accuracy=2 / 2, tokens=160 / 600)


@pytest.mark.parametrize("accuracy, tokens, expected", [
    (0.97, 0.5, True), (0.969, 0.4, False), (1.2, 0.501, False)])
def test_the_target_needs_both_ratios(accuracy, tokens, expected):
    assert met(Ratios(accuracy, tokens)) is expected


def test_bootstrap_brackets_the_point_and_counts_resamples_that_meet_the_target():
    # auto: same answers as mcts at a third of the tokens, except one problem it misses
    rows = [(True, 100, True, 300)] * 30 + [(False, 100, True, 300)] + [(False, 100, False, 300)] * 9
    estimate = bootstrap(paired(run(rows)), resamples=400)
    assert estimate.point == Ratios(accuracy=30 / 31, tokens=1 / 3)
    assert estimate.low.accuracy < estimate.point.accuracy < estimate.high.accuracy == 1.0
    assert estimate.low.tokens == estimate.high.tokens == pytest.approx(1 / 3)
    # met only by resamples without the one problem only mcts solves (30/31 < 0.97): about
    # (39/40) ** 40 = 0.36 of them
    assert 0.25 < estimate.met_share < 0.5
    assert bootstrap(paired(run(rows)), resamples=400) == estimate  # seeded: reproducible


def test_all_resamples_meet_a_target_every_problem_meets():
    rows = [(True, 10, True, 100)] * 20 + [(False, 10, False, 100)] * 5
    assert bootstrap(paired(run(rows)), resamples=200).met_share == 1.0


def test_report_states_ratios_intervals_and_verdict():
    outcomes = run([(True, 100, True, 300)] * 3 + [(False, 200, True, 300)])
    args = argparse.Namespace(per_level=0, countdown=4, seed=700000, concurrency=4,
                              bootstrap=100)
    text = report(outcomes, bootstrap(paired(outcomes), 100), args, wall_s=60)
    assert "| auto | 75.0% | 125 |" in text and "| mcts/5 | 100.0% | 300 |" in text
    assert "accuracy ratio 0.750" in text and "token ratio 0.417" in text
    assert "target missed at the point estimate" in text
