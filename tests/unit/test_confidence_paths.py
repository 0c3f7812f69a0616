"""Every answer of a search carries its confidence signals (search.confidence.answer_signals):
its path's token confidences read over its whole lineage, every engine call asking for the
top-k logprobs, the finished paths' agreement and the verifiers' score (no vLLM: the scripted
BPE-like model of test_token_paths, which returns logprobs when asked)."""

from __future__ import annotations

import pytest

from search.confidence import path_confidence
from search.strategies import best_of_n, greedy, self_consistency
from tests.unit.test_token_paths import STRATEGIES, engine, search


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES,
                         ids=[s.NAME for s, _ in STRATEGIES])
@pytest.mark.parametrize("delimiter", ["\n", "\n\n"])
def test_an_answers_path_signals_read_every_token_of_its_path(strategy, params, delimiter):
    e = engine()
    result, _ = search(strategy, params, e, delimiter=delimiter)
    assert all(p.logprobs == params.confidence_top_k for _, p in e.calls)
    for answer in result.answers:
        expected = path_confidence([e.confidence(t) for t in answer.token_ids],
                                   params.confidence_window, params.confidence_tail)
        signals = answer.signals
        assert signals["tokens"] == len(answer.token_ids)
        assert signals["mean"] == pytest.approx(expected.mean)
        assert signals["lowest_group"] == pytest.approx(expected.lowest_group)
        assert signals["bottom"] == pytest.approx(expected.bottom)
        assert signals["tail"] == pytest.approx(expected.tail)
        assert signals["verifier"] == answer.score


def test_the_window_and_tail_are_the_search_params():
    e = engine()
    params = greedy.Params(confidence_window=3, confidence_tail=2)
    result, _ = search(greedy, params, e)
    confs = [e.confidence(t) for t in result.best.token_ids]
    assert result.best.signals["tail"] == pytest.approx(sum(confs[-2:]) / 2)
    assert result.best.signals["lowest_group"] == pytest.approx(
        min(sum(confs[i:i + 3]) / 3 for i in range(len(confs) - 2)))


def test_no_logprobs_asked_no_path_signals():
    e = engine()
    result, _ = search(greedy, greedy.Params(confidence_top_k=0), e)
    assert all(p.logprobs is None for _, p in e.calls)
    assert set(result.best.signals) == {"agreement", "verifier"}


@pytest.mark.parametrize(("strategy", "params", "agreement"), [
    # three solutions: answers 3, 4, 3
    (self_consistency, self_consistency.Params(n_candidates=3), 2 / 3),
    (best_of_n, best_of_n.Params(n_candidates=3), 2 / 3),
    # one path agrees with itself: nothing to say
    (greedy, greedy.Params(), None),
])
def test_agreement_is_the_share_of_finished_paths_stating_the_answer(strategy, params,
                                                                     agreement):
    result, _ = search(strategy, params, engine())
    assert result.best.text.endswith("\\boxed{3}.")
    assert result.best.signals["agreement"] == (None if agreement is None
                                                else pytest.approx(agreement))


def test_a_weighted_vote_agreement_weighs_by_path_score():
    params = best_of_n.Params(n_candidates=3, selection="weighted_vote")
    result, _ = search(best_of_n, params, engine())
    # every path scores the same (0.5 per step, min): the weighted share is the plain one
    assert result.best.signals["agreement"] == pytest.approx(2 / 3)

