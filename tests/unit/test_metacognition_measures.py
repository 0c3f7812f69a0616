"""benchmarks/metacognition.py's measures on hand-made answers."""

import pytest

from benchmarks.metacognition import auroc, ece, risk_coverage, Answer


def answer(confidence: float, correct: bool) -> Answer:
    return Answer(config="c", problem="p", task="arithmetic", bucket="arith 1-2",
                  correct=correct, tokens=10, strategy="greedy", confidence=confidence,
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
