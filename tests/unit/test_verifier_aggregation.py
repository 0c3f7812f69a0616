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


# --- combine="weighted_sum": expected values from numpy, a reference computation apart from ours

SCORES = {"syntax": 1.0, "prm": 0.62, "logic": 0.0}
PROCESS = {"syntax": 0.3, "prm": 0.5, "logic": 0.2}  # the additive process reward's weights


def reference(scores, weights, how):
    import numpy as np

    names = [n for n in scores if weights.get(n, 1.0) != 0]
    s = np.array([scores[n] for n in names], dtype=np.float64)
    w = np.array([weights.get(n, 1.0) for n in names], dtype=np.float64)
    return float(np.prod(s ** w)) if how == "product" else float(np.dot(w, s) / w.sum())


@pytest.mark.parametrize("scores, weights", [
    (SCORES, PROCESS),
    ({"syntax": 1.0, "prm": 0.62, "logic": 1.0}, PROCESS),
    ({"a": 0.25, "b": 0.9}, {"a": 2.0, "b": 6.0}),  # weights need not sum to 1
    ({"a": 0.25, "b": 0.9, "c": 0.1}, {"c": 0.0}),  # weight 0 leaves c out; missing weights are 1
])
@pytest.mark.parametrize("how", ["product", "weighted_sum"])
def test_combine_matches_the_reference(scores, weights, how):
    assert combine(scores, weights, how) == pytest.approx(reference(scores, weights, how))


def test_weighted_sum_is_the_additive_process_reward_and_a_zero_does_not_prune():
    assert combine(SCORES, PROCESS, "weighted_sum") == pytest.approx(0.3 * 1.0 + 0.5 * 0.62)
    assert combine(SCORES, PROCESS, "product") == 0.0
    assert combine({"a": 0.4}, {"a": 0.0}, "weighted_sum") == 1.0  # nothing weighed: no objection


def test_combine_refuses_an_unknown_form_and_out_of_range_scores():
    with pytest.raises(ValueError, match="unknown combine"):
        combine({"a": 0.5}, {}, "mean")
    with pytest.raises(ValueError, match="outside"):
        combine({"a": 1.5}, {}, "weighted_sum")
