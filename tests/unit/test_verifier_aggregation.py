"""Aggregation: weighted product in log space, hard zeros, path aggregation."""

import math

import pytest

from verifiers.aggregation import aggregate_path, combine, path_log_score


def test_weights_are_exponents():
    assert combine({"a": 0.5, "b": 0.25}, {"a": 2.0, "b": 1.0}) == pytest.approx(0.5**2 * 0.25)
    assert combine({"a": 0.5}, {}) == pytest.approx(0.5)  # default weight 1
    assert combine({"a": 0.5, "b": 0.1}, {"b": 0.0}) == pytest.approx(0.5)  # weight 0 ignores


def test_a_hard_zero_prunes_and_weight_zero_does_not():
    assert combine({"a": 0.9, "logic": 0.0}, {"logic": 1.0}) == 0.0
    assert combine({"a": 0.9, "logic": 0.0}, {"logic": 0.0}) == pytest.approx(0.9)


def test_out_of_range_scores_are_refused():
    with pytest.raises(ValueError, match="outside"):
        combine({"a": 1.5}, {})
    with pytest.raises(ValueError, match="outside"):
        combine({"a": math.nan}, {})


def test_long_paths_still_rank_in_log_space():
    better, worse = [1e-3] * 200, [1e-3] * 199 + [1e-4]
    assert math.prod(better) == math.prod(worse) == 0.0  # plain products underflow and tie
    assert path_log_score(better) == pytest.approx(200 * math.log(1e-3))
    assert path_log_score(better) > path_log_score(worse) > -math.inf
    assert path_log_score([0.5, 0.0]) == -math.inf
    assert path_log_score([0.5, 0.25], "min") == pytest.approx(math.log(0.25))


@pytest.mark.parametrize("how, expected", [("product", 0.9 * 0.5 * 0.8), ("min", 0.5),
                                           ("last", 0.8), ("mean", (0.9 + 0.5 + 0.8) / 3)])
def test_path_aggregations(how, expected):
    assert aggregate_path([0.9, 0.5, 0.8], how) == pytest.approx(expected)


def test_path_edge_cases():
    assert aggregate_path([], "product") == 1.0
    assert aggregate_path([0.9, 0.0], "product") == 0.0
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_path([0.5], "median")
