"""The deepconf strategy on a scripted engine whose traces have scripted token confidences:
offline filtering and confidence-weighted voting, online thresholds and early aborts (seen by
the engine), adaptive stopping, and bad options through the API."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from search.problem import SearchProblem
from search.strategies import deepconf
from search.strategies.deepconf import Params, percentile
from server.settings import Settings
from tests.search_fakes import TableVerifier, TraceEngine
from verifiers.scorer import Scorer

PROMPT = "Q\n"
SEED = 11
# three say 7 with confidence 2, two say 5 with confidence 2.5: a plain vote says 7
SPLIT = [("7\nAnswer: 7", 2.0)] * 3 + [("5\nAnswer: 5", 2.5)] * 2


def run(traces, **params) -> tuple:
    engine = TraceEngine(traces=traces, seed=SEED)
    scorer = Scorer({"table": TableVerifier({})}, {"table": 1.0})
    params = Params(seed=SEED, n_candidates=len(traces), confidence_window=4, **params)
    result = asyncio.run(deepconf.run(SearchProblem(prompt=PROMPT, question="Q"), engine,
                                      scorer, params))
    return result, engine, result.details["deepconf"]


def test_offline_keeps_the_most_confident_share_and_weights_their_votes():
    everyone, engine, report = run(SPLIT, deepconf_mode="offline", keep_share=1.0)
    assert everyone.best.text == "7\nAnswer: 7"  # 3 x 2.0 outweighs 2 x 2.5
    assert (report["voted"], report["aborted"], report["completed"]) == (5, 0, 5)
    assert report["agreement"] == pytest.approx(6 / 11)
    # every trace asked the engine for its top-k logprobs, each in a request of its own
    assert [p.logprobs for _, _, p in engine.requests] == [5] * 5
    assert all(p.final_only for _, _, p in engine.requests)
    confident, _, report = run(SPLIT, deepconf_mode="offline", keep_share=0.4)
    assert confident.best.text == "5\nAnswer: 5"  # the 2 most confident of 5 vote
    assert (report["voted"], report["threshold"]) == (2, 2.5)


def test_offline_weights_votes_by_confidence_not_count():
    traces = [("7\nAnswer: 7", 1.0)] * 3 + [("5\nAnswer: 5", 2.0)] * 2
    result, _, report = run(traces, deepconf_mode="offline", keep_share=1.0)
    assert result.best.text == "5\nAnswer: 5"  # 2 x 2.0 over 3 x 1.0
    assert report["agreement"] == pytest.approx(4 / 7)


@pytest.mark.parametrize(("signal", "answer"), [("lowest_group", "5"), ("tail", "7")])
def test_the_confidence_signal_is_an_option(signal, answer):
    # 7: confident throughout but for a dip; 5: hesitant throughout, sure at the end
    dip = [3.0] * 4 + [0.5] * 4 + [3.0] * 3
    traces = [("7\n7\nAnswer: 7", dip), ("5\n5\nAnswer: 5", [1.0] * 8 + [2.0] * 3)]
    result, _, _ = run(traces, deepconf_mode="offline", keep_share=0.5,
                       confidence_signal=signal)
    assert result.best.text.endswith(f"Answer: {answer}")


def test_online_aborts_a_trace_in_the_engine_once_its_window_falls_below_the_threshold():
    falls = [3.0] * 10 + [0.5] * 30  # its window's mean drops below 2.5 at the first 0.5
    traces = [("1\nAnswer: 5", 2.0), ("2\nAnswer: 5", 3.0),  # warm-up
              ("3\nAnswer: 5", 3.0), ("4" * 30 + "\nAnswer: 9", falls)]
    result, engine, report = run(traces, warmup=2, keep_share=0.5, consensus=False)
    assert report["threshold"] == pytest.approx(2.5)  # the median of the warm-up's 2 and 3
    assert result.best.text == "2\nAnswer: 5"
    # the falling trace's request was closed after 11 of its 40 tokens: the engine saw it
    (falling,) = [rid for rid, _, p in engine.requests
                  if engine.trace_for(p.seed)[0].startswith("4")]
    assert engine.aborted == [falling]
    assert engine.written[falling] == 11  # window [3, 3, 3, 0.5]: 2.375 < 2.5
    assert (report["aborted"], report["aborted_tokens"]) == (1, 11)
    # the warm-up below the threshold does not vote, nor the aborted trace; the rest do
    assert (report["voted"], report["completed"], report["traces"]) == (2, 3, 4)
    assert result.stats.generated_tokens == 11 + 11 + 11 + 11
    # only the warm-up waited for whole traces; the rest streamed
    assert [p.final_only for _, _, p in engine.requests] == [True, True, False, False]


def test_online_keeps_a_trace_whose_window_stays_above_the_threshold():
    dips = [3.5] * 10 + [2.6] * 2 + [3.5] * 11  # its window dips to 3.05, above 2.5
    traces = [("1\nAnswer: 5", 2.0), ("2\nAnswer: 5", 3.0), ("3" * 20 + "\nAnswer: 9", dips)]
    result, engine, report = run(traces, warmup=2, keep_share=0.5, consensus=False)
    assert engine.aborted == [] and report["aborted"] == 0 and report["voted"] == 2
    assert result.best.text.endswith("Answer: 9")  # 3.05 outweighs the 5's 3.0


def test_online_stops_generating_once_the_vote_agrees():
    traces = [("1\nAnswer: 5", 3.0)] * 3 + [("2\nAnswer: 6", 3.0)] * 5
    result, engine, report = run(traces, warmup=3, keep_share=1.0, consensus=0.95)
    assert len(engine.requests) == 3  # the warm-up agreed: no other trace was started
    assert report["stopped_at_consensus"] == 5 and result.best.text == "1\nAnswer: 5"


def test_one_vote_is_no_consensus():
    # a warm-up of 2 keeps only its more confident trace (the threshold sits between them): its
    # lone vote had stopped the search there; the next trace that passes and agrees stops it
    traces = [("1\nAnswer: 5", 2.0), ("2\nAnswer: 6", 3.0), ("3\nAnswer: 6", 3.0)] + \
        [("4" * 20 + "\nAnswer: 5", 3.0)] * 3
    result, engine, report = run(traces, warmup=2, keep_share=0.9, consensus=0.95)
    assert report["threshold"] == pytest.approx(2.1)
    assert report["voted"] == 2 and result.best.text == "2\nAnswer: 6"
    assert (report["traces"], report["stopped_at_consensus"]) == (6, 3)
    assert len(engine.aborted) == 3  # the longer ones, in flight when the third agreed


def test_online_consensus_aborts_the_traces_in_flight():
    long = ("9" * 40 + "\nAnswer: 5", 3.0)
    traces = [("1\nAnswer: 5", 3.0), ("2\nAnswer: 6", 3.0), ("3\nAnswer: 5", 3.0), long, long]
    result, engine, report = run(traces, warmup=2, keep_share=1.0, consensus=0.6)
    # the short trace's 5 makes 2 of 3 agree: the two long ones are cut short in the engine
    assert len(engine.aborted) == 2 and report["stopped_at_consensus"] == 2
    assert all(engine.written[rid] < 43 for rid in engine.aborted)
    assert result.best.text.endswith("Answer: 5")


def test_online_starts_no_more_traces_once_the_warmup_spent_the_budget():
    result, engine, report = run([("1\nAnswer: 5", 3.0)] * 4, warmup=2, max_nodes=1,
                                  consensus=False)
    assert len(engine.requests) == 2 and result.stats.stopped_by == "max_nodes"
    assert result.best.text == "1\nAnswer: 5" and report["traces"] == 2


def test_traces_read_top_k_logprobs_where_the_server_reads_none_elsewhere():
    _, engine, _ = run(SPLIT, deepconf_mode="offline", confidence_top_k=0)
    assert [p.logprobs for _, _, p in engine.requests] == [5] * 5


def test_online_needs_more_traces_than_its_warmup():
    with pytest.raises(ValueError, match="n_candidates=4 <= warmup=4"):
        Params(n_candidates=4, warmup=4)
    Params(n_candidates=4, warmup=4, deepconf_mode="offline")  # offline has no warm-up
    assert Params.from_options({"n_answers": 20}).n_candidates == 20


@pytest.mark.parametrize("q", [0, 10, 37.5, 50, 90, 100])
def test_percentile_interpolates_as_numpy(q):
    values = [3.2, 1.0, 2.5, 7.0, 4.4]
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))


# --- through the API ---------------------------------------------------------------------------

@pytest.fixture
def engine() -> TraceEngine:
    return TraceEngine(traces=[("1+1=2\nAnswer: 2", 3.0)] * 6, seed=3)


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, search_verifiers={"logic": 1.0})


def chat(**reasoning) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": "1+1"}],
            "max_tokens": 64, "reasoning": {"seed": 3, **reasoning}}


async def test_the_response_says_how_deepconf_ran(client):
    r = await client.post("/v1/chat/completions", json=chat(
        strategy="deepconf", n_candidates=6, keep_share=0.9, consensus=False))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "1+1=2\nAnswer: 2"
    report = body["reasoning"]["deepconf"]
    assert (report["mode"], report["signal"], report["threshold"]) == \
        ("online", "lowest_group", pytest.approx(3.0))
    assert (report["traces"], report["voted"], report["aborted"]) == (6, 6, 0)
    assert body["usage"]["completion_tokens"] == report["generated_tokens"] == 6 * 15


async def test_by_default_online_deepconf_stops_once_its_two_warmup_traces_agree(client):
    r = await client.post("/v1/chat/completions", json=chat(strategy="deepconf"))
    assert r.status_code == 200, r.text
    report = r.json()["reasoning"]["deepconf"]
    # the default: 16 traces, a warm-up of 2, consensus 0.95; the warm-up's two agree
    assert (report["traces"], report["stopped_at_consensus"]) == (2, 14)
    assert r.json()["usage"]["completion_tokens"] == 2 * 15


@pytest.mark.parametrize(("reasoning", "param", "says"), [
    ({"strategy": "deepconf", "n_candidates": 2}, "reasoning", "warmup=2"),
    ({"strategy": "deepconf", "n_candidates": 3, "warmup": 3}, "reasoning", "offline"),
    ({"strategy": "deepconf", "keep_share": 0}, "reasoning.keep_share", ""),
    ({"strategy": "deepconf", "keep_share": 1.5}, "reasoning.keep_share", ""),
    ({"strategy": "deepconf", "warmup": 0}, "reasoning.warmup", ""),
    ({"strategy": "deepconf", "deepconf_mode": "both"}, "reasoning.deepconf_mode", ""),
    ({"strategy": "deepconf", "confidence_signal": "max"}, "reasoning.confidence_signal", ""),
    ({"strategy": "deepconf", "consensus": 0}, "reasoning.consensus", "false"),
    ({"strategy": "deepconf", "consensus": True}, "reasoning.consensus", "(0, 1]"),
    ({"strategy": "deepconf", "consensus": "0.9"}, "reasoning.consensus", "(0, 1]"),
    ({"strategy": "best_of_n", "warmup": 2}, "reasoning.warmup", "deepconf"),
    ({"strategy": "self_consistency", "keep_share": 0.5}, "reasoning.keep_share", "deepconf"),
])
async def test_bad_deepconf_options_are_400s_that_say_what_to_change(client, reasoning, param,
                                                                      says):
    r = await client.post("/v1/chat/completions", json=chat(**reasoning))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"]


def test_the_answer_carries_its_traces_confidence_signals():
    # the calibrated confidence reads the answer's path signals: deepconf's traces keep their
    # tokens' confidences on their steps as every other strategy's paths do
    result, _, _ = run(SPLIT, deepconf_mode="offline", keep_share=1.0)
    signals = result.best.signals
    assert signals["tokens"] > 0
    assert signals["mean"] == pytest.approx(2.0) and signals["lowest_group"] == pytest.approx(2.0)
