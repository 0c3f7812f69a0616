"""benchmarks/metacognition.py's measures on hand-made answers."""

import pytest

from benchmarks.metacognition import Answer, auroc, ece, ece_floor, gate_bounds, risk_coverage


def answer(confidence: float, correct: bool, config: str = "c", problem: str = "p",
           tokens: int = 10) -> Answer:
    return Answer(config=config, problem=problem, task="arithmetic", bucket="arith 1-2",
                  correct=correct, tokens=tokens, strategy="greedy", confidence=confidence,
                  calibrated=True, uncalibrated=None, signals={}, stages=None, latency_s=0.1)


def test_auroc_ranks_right_above_wrong():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5, 0.7], [True, True]) is None


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    # bin [0.9, 1.0): confidence 0.9, accuracy 0.5 -> gap 0.4 over all answers
    assert ece([0.9, 0.9], [True, False]) == pytest.approx(0.4)
    assert ece([0.25, 0.25, 0.25, 0.25], [True, False, False, False]) == pytest.approx(0.0)
    assert ece([1.0], [True]) == pytest.approx(0.0)


def test_risk_coverage_keeps_the_most_confident_first():
    curve = risk_coverage([answer(0.9, True), answer(0.8, True), answer(0.3, False),
                           answer(0.2, True)])
    assert [(c, round(a, 3)) for _, c, a in curve] == [(0.25, 1.0), (0.5, 1.0), (0.75, 0.667),
                                                       (1.0, 0.75)]


def test_the_ece_floor_is_what_a_perfectly_calibrated_confidence_shows():
    # certain answers: a calibrated confidence of 0 or 1 is never off
    assert ece_floor([1.0] * 50 + [0.0] * 50) == (0.0, 0.0)
    # answers at 0.5: on 20 of them the share right wanders from one half by chance
    mean, p95 = ece_floor([0.5] * 20)
    assert 0.05 < mean < 0.15 and mean < p95 <= 0.3
    # on 2000 it barely does
    assert ece_floor([0.5] * 2000, draws=100)[0] < 0.02


def test_gate_bounds_read_the_fixed_answers_of_the_same_problems():
    greedy = [answer(0.9, True, "greedy", "a", 10), answer(0.2, False, "greedy", "b", 10),
              answer(0.3, False, "greedy", "c", 10), answer(0.95, True, "greedy", "d", 10)]
    mcts = [answer(0.9, True, "mcts/5", "a", 100), answer(0.9, True, "mcts/5", "b", 100),
            answer(0.9, False, "mcts/5", "c", 100), answer(0.9, True, "mcts/5", "d", 100)]
    (bound,) = gate_bounds(greedy + mcts, share=0.5)
    assert (bound["second"], bound["best"]) == ("mcts/5", "mcts/5")  # 0.75 beats 0.5
    assert bound["cap_tokens"] == 50 and bound["fixes"] == 0.5
    # oracle: b and c escalate (10 + 100 tokens each), b is fixed
    assert (bound["oracle_accuracy"], bound["oracle_tokens"]) == (0.75, 60)
    # within 50 tokens a gate escalates one problem at most: b, the least confident, which
    # mcts fixes (threshold 0.25: 10 + 100 / 4 tokens)
    assert (bound["accuracy"], bound["tokens"], bound["threshold"]) == (0.75, 35, 0.3)
