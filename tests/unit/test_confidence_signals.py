"""DeepConf's confidence signals on hand-made logprobs (search/confidence.py)."""

import math

import pytest

from engine.protocol import TokenLogprob
from search.confidence import (GroupMonitor, group_confidences, path_confidence,
                               token_confidence, token_confidences, vote_agreement)


def test_token_confidence_is_minus_the_mean_of_the_top_k():
    top = {"a": math.log(0.9), "b": math.log(0.05), "c": math.log(0.03), "d": math.log(0.02)}
    expected = -(math.log(0.9) + math.log(0.05) + math.log(0.03)) / 3
    assert token_confidence(top, k=3) == pytest.approx(expected)


def test_peaked_distribution_is_more_confident_than_flat():
    peaked = {"a": math.log(0.97), "b": math.log(0.02), "c": math.log(0.01)}
    flat = {"a": math.log(0.34), "b": math.log(0.33), "c": math.log(0.33)}
    assert token_confidence(peaked, 3) > token_confidence(flat, 3)


def test_extra_sampled_entry_and_minus_inf_are_left_out():
    # vLLM adds the sampled token beyond the top k; -inf entries (masked tokens) say nothing
    top = {"a": -0.1, "b": -3.0, "sampled": -9.0, "masked": -math.inf}
    assert token_confidence(top, k=2) == pytest.approx(1.55)
    assert token_confidence({"x": -math.inf}, k=2) == 0.0


def test_positions_without_alternatives_use_the_sampled_logprob():
    logprobs = [TokenLogprob("a", -0.5, {"a": -0.5, "b": -2.5}), TokenLogprob("b", -1.0)]
    assert token_confidences(logprobs, k=2) == pytest.approx([1.5, 1.0])


def test_group_confidences_are_sliding_means():
    assert group_confidences([1, 2, 3, 4, 5], window=2) == pytest.approx([1.5, 2.5, 3.5, 4.5])
    assert group_confidences([1, 2], window=8) == pytest.approx([1.5])
    assert group_confidences([], window=3) == []


def test_path_confidence_signals():
    confidences = [5.0] * 10 + [1.0] * 4 + [5.0] * 6  # a hesitation in the middle
    signals = path_confidence(confidences, window=4, tail=3)
    assert signals.mean == pytest.approx(sum(confidences) / 20)
    assert signals.lowest_group == pytest.approx(1.0)
    assert signals.bottom == pytest.approx((1.0 + 2.0) / 2)  # lowest 10% of 17 groups: 2
    assert signals.tail == pytest.approx(5.0)
    assert signals.tokens == 20
    assert path_confidence([], 4, 3).tokens == 0


def test_group_monitor_judges_only_full_windows():
    monitor = GroupMonitor(window=3)
    assert monitor.push(5.0) is None and not monitor.below(10.0)
    monitor.push(5.0)
    assert monitor.push(2.0) == pytest.approx(4.0)
    assert monitor.below(4.5) and not monitor.below(3.5)
    assert monitor.push(8.0) == pytest.approx(5.0)
    assert monitor.lowest == pytest.approx(4.0)


def test_vote_agreement():
    assert vote_agreement({"4": 3.0, "5": 1.0}, "4") == pytest.approx(0.75)
    assert vote_agreement({"4": 2.0}, "4") == 1.0
    assert vote_agreement({}, "4") == 0.0
