"""The strategies against a scripted step engine and a table verifier (no vLLM)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from search.problem import SearchProblem
from search.registry import STRATEGIES
from search.run import SearchRun
from search.strategies import beam, best_of_n, greedy, mcts, self_consistency, tot
from tests.search_fakes import StepEngine, TableVerifier
from verifiers.scorer import Scorer

PROMPT = "Q\n"

# Greedy (the first candidate) walks into a dead end; one branch of three reaches the answer.
TRAP = {
    (): ["x1", "y1", "z1"],
    ("x1",): ["x2"], ("x1", "x2"): ["Answer: 1"],
    ("y1",): ["y2"], ("y1", "y2"): ["Answer: 2"],
    ("z1",): ["z2"], ("z1", "z2"): ["Answer: 3"],
}
SCORES = {"x1": 0.6, "x2": 0.1, "Answer: 1": 0.1, "y1": 0.5, "y2": 0.2, "Answer: 2": 0.2,
          "z1": 0.55, "z2": 0.9, "Answer: 3": 0.95}


def problem(**kw) -> SearchProblem:
    return SearchProblem(prompt=PROMPT, question="Q", **kw)


def scorer(table=SCORES, **kw) -> tuple[Scorer, TableVerifier]:
    verifier = TableVerifier(table, **kw)
    return Scorer({"table": verifier}, {"table": 1.0}), verifier


def run(strategy, params, engine=None, table=SCORES, **problem_kw):
    engine = engine or StepEngine(prompt=PROMPT, script=TRAP)
    score, verifier = scorer(table)
    result = asyncio.run(strategy.run(problem(**problem_kw), engine, score, params))
    return result, engine, verifier


def test_every_strategy_is_registered_with_its_params():
    assert set(STRATEGIES) == {"greedy", "beam", "mcts", "tot", "best_of_n",
                               "self_consistency", "deepconf"}
    assert STRATEGIES["beam"].params().beam_width == 3
    assert STRATEGIES["mcts"].params().max_depth == 5


def test_params_build_themselves_from_options_with_one_name_per_setting():
    options = {"n_candidates": 5, "beam_width": 2, "max_depth": 4, "evaluation": "rollout",
               "simulations": None, "verifiers": {"logic": 1}, "n_answers": 1}
    built = {name: s.params.from_options(options) for name, s in STRATEGIES.items()}
    assert [built[n].n_candidates for n in ("beam", "mcts", "tot", "best_of_n")] == [5] * 4
    assert (built["beam"].beam_width, built["tot"].beam_width) == (2, 2)
    assert (built["mcts"].max_depth, built["tot"].max_depth) == (4, 4)
    assert built["mcts"].evaluation == built["tot"].evaluation == "rollout"
    assert built["mcts"].simulations == mcts.Params().simulations  # None keeps the default
    # n distinct answers need at least n complete solutions
    assert best_of_n.Params.from_options({"n_candidates": 2, "n_answers": 4}).n_candidates == 4
    assert self_consistency.Params.from_options({"n_answers": 9}).n_candidates == 9


def test_greedy_follows_the_first_candidate_and_scores_it():
    result, engine, _ = run(greedy, greedy.Params())
    assert result.best.text == "x1\nx2\nAnswer: 1"
    assert result.best.finish_reason == "stop"
    assert result.best.step_scores == pytest.approx((0.6, 0.1, 0.1))
    assert result.best.score == pytest.approx(0.1)  # min over the steps
    assert result.stats.engine_calls == 1 and len(engine.calls) == 1
    assert engine.calls[0][1].temperature == 0


def test_mcts_finds_the_one_right_branch_greedy_misses():
    result, engine, verifier = run(mcts, mcts.Params(simulations=8, seed=1, n_candidates=3))
    assert result.best.text == "z1\nz2\nAnswer: 3"
    assert result.best.score == pytest.approx(0.55)
    # siblings come from one request (n = n_candidates), never one by one
    first = engine.calls[0][1]
    assert first.n == 3 and first.stop == ("\n",)
    assert result.stats.nodes >= 3 and result.stats.engine_calls == len(engine.calls)


def test_mcts_greedy_first_keeps_an_accepted_answer_and_searches_past_a_rejected_one():
    # the greedy path scores 0.6 * 0.1 * 0.1 = 0.006 by the table (the verifier named)
    kept, engine, _ = run(mcts, mcts.Params(simulations=8, seed=1, n_candidates=3,
                                            accept_greedy=0.005, accept_by="table"))
    assert kept.best.text == "x1\nx2\nAnswer: 1" and kept.stats.stopped_by == "accept_greedy"
    assert len(engine.calls) == 1 and engine.calls[0][1].temperature == 0
    # no PRM among the verifiers: the combined score decides, and 0.006 < 0.01 searches on
    searched, engine, _ = run(mcts, mcts.Params(simulations=8, seed=1, n_candidates=3,
                                                accept_greedy=0.01, return_trace=True))
    assert searched.best.text == "z1\nz2\nAnswer: 3"
    assert engine.calls[0][1].temperature == 0 and engine.calls[1][1].temperature > 0
    # the greedy attempt counts: its call and its tokens are the request's
    assert searched.stats.engine_calls == len(engine.calls)
    assert searched.stats.generated_tokens >= len("x1\nx2\nAnswer: 1")


def test_mcts_greedy_first_answers_with_the_attempt_when_the_search_finishes_nothing():
    # the greedy attempt spends 17 of 20 tokens: the search stops before finishing a path
    result, _, _ = run(mcts, mcts.Params(simulations=8, seed=1, n_candidates=3, accept_greedy=0.5,
                                         budget_tokens=20))
    assert result.best.text == "x1\nx2\nAnswer: 1" and result.best.finish_reason == "stop"
    assert result.stats.stopped_by == "budget_tokens"


def test_mcts_greedy_first_rejects_an_empty_answer():
    assert mcts.acceptance(mcts.Node(id=0, parent=None, step=""), "prm") == 0.0


def test_mcts_by_default_samples_two_steps_and_widens_to_the_third():
    engine = StepEngine(prompt=PROMPT, script=TRAP, fresh=True)
    result, engine, _ = run(mcts, mcts.Params(seed=1), engine=engine)
    root_samples = [params.n for prompt, params in engine.calls
                    if prompt == PROMPT and params.temperature > 0]
    assert root_samples[0] == 2 and len(root_samples) >= 2  # z1 came from a widening
    assert result.best.text == "z1\nz2\nAnswer: 3"


def test_mcts_values_are_backpropagated_to_the_root():
    result, _, _ = run(mcts, mcts.Params(simulations=8, n_candidates=3, return_trace=True))
    root = next(n for n in result.trace if n["parent"] is None)
    children = [n for n in result.trace if n["parent"] == root["id"]]
    assert root["visits"] == sum(c["visits"] for c in children)
    assert max(children, key=lambda c: c["visits"])["text"] == "z1"


# Three first steps that lead nowhere; a fourth, sampled only by a later request, wins.
DEAD_ENDS = {
    (): ["a", "b", "c", "d"],
    ("a",): ["Answer: 1"], ("b",): ["Answer: 2"], ("c",): ["Answer: 3"], ("d",): ["Answer: 4"],
}
DEAD_END_SCORES = {"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.9, "Answer: 4": 0.95, "other": 0.01}


@pytest.mark.parametrize("evaluation", ["scorer", "rollout"])
def test_mcts_widens_a_node_whose_children_lead_nowhere(evaluation):
    def search(widening: float):
        engine = StepEngine(prompt=PROMPT, script=DEAD_ENDS, fresh=True)
        params = mcts.Params(simulations=10, n_candidates=3, widening=widening,
                             evaluation=evaluation, return_trace=True)
        result, _, _ = run(mcts, params, engine=engine, table=DEAD_END_SCORES)
        return result, [n["text"] for n in result.trace if n["parent"] == 0]

    result, first_steps = search(widening=0.5)
    assert first_steps == ["a", "b", "c", "d"]
    assert result.best.text == "d\nAnswer: 4"
    # without widening the first three samples are all the search ever tries
    result, first_steps = search(widening=0)
    assert first_steps == ["a", "b", "c"] and result.best.text != "d\nAnswer: 4"


def test_mcts_without_widening_keeps_a_first_expansion_that_merged_repeats():
    # the first request samples a, a, b (two children); a later one would find d
    script = {**DEAD_ENDS, (): ["a", "a", "b", "d"]}
    engine = StepEngine(prompt=PROMPT, script=script, fresh=True)
    params = mcts.Params(simulations=10, n_candidates=3, widening=0, return_trace=True)
    result, _, _ = run(mcts, params, engine=engine, table=DEAD_END_SCORES)
    assert [n["text"] for n in result.trace if n["parent"] == 0] == ["a", "b"]


def test_mcts_does_not_widen_a_node_whose_samples_only_repeat():
    engine = StepEngine(prompt=PROMPT, script=TRAP)  # every request samples the same three
    params = mcts.Params(simulations=12, n_candidates=3, return_trace=True)
    result, _, _ = run(mcts, params, engine=engine)
    widenings = [p for p, params in engine.calls if p == PROMPT and params.temperature > 0]
    assert len(widenings) == 2  # the first expansion, and one widening that found nothing
    assert result.best.text == "z1\nz2\nAnswer: 3"


def test_beam_keeps_the_top_width_paths_each_round():
    wide = {(): ["a", "b", "c", "d"],
            **{(s,): [f"{s}2"] for s in "abcd"},
            **{(s, f"{s}2"): [f"Answer: {s}"] for s in "abcd"}}
    table = {"a": 0.9, "b": 0.3, "c": 0.8, "d": 0.1, "a2": 0.2, "c2": 0.7,
             "Answer: a": 0.9, "Answer: c": 0.9}
    engine = StepEngine(prompt=PROMPT, script=wide)
    result, engine, verifier = run(beam, beam.Params(beam_width=2, n_candidates=4,
                                                     return_trace=True), engine, table)
    expanded = [engine.steps_of(prompt) for prompt, _ in engine.calls]
    # round 1 expands the root; round 2 only the two best ("a" and "c"), in one batch
    assert expanded[0] == () and sorted(expanded[1:3]) == [("a",), ("c",)]
    assert ("b",) not in expanded and ("d",) not in expanded
    assert result.best.text == "c\nc2\nAnswer: c"
    assert verifier.batches[0] == 4 and verifier.batches[1] == 2  # one scoring batch a round


def test_tot_keeps_the_best_states_by_value_and_finishes_them():
    result, engine, _ = run(tot, tot.Params(beam_width=1, n_candidates=3, max_depth=1))
    # depth 1 keeps the best-rated first step ("x1", 0.6), then finishes it greedily
    assert result.best.text == "x1\nx2\nAnswer: 1"
    result, _, _ = run(tot, tot.Params(beam_width=1, n_candidates=3, max_depth=1, evaluation="rollout"))
    assert result.best.text == "z1\nz2\nAnswer: 3"  # the lookahead sees past the trap


def test_tot_with_rollouts_does_not_finish_a_state_it_rolled_out_again():
    result, engine, _ = run(tot, tot.Params(beam_width=1, n_candidates=3, max_depth=1, evaluation="rollout",
                                            return_trace=True))
    completions = [params for _, params in engine.calls if not params.stop]
    assert len(completions) == 3  # one rollout per first step; concluding reuses z1's
    paths = [n for n in result.trace if n["text"] == "Answer: 3"]
    assert len(paths) == 1 and result.best.text == "z1\nz2\nAnswer: 3"


def test_finish_reuses_a_greedy_completion_that_passed_through_the_node():
    async def go():
        engine = StepEngine(prompt=PROMPT, script=TRAP)
        search = SearchRun(problem(), engine, scorer()[0], mcts.Params())
        (x1, y1, _) = await search.expand(search.tree.root, 3)
        end = await search.finish(x1)  # x1 -> x2 -> Answer: 1
        x2 = end.parent
        calls = len(engine.calls)
        assert await search.finish(x1) is end and await search.finish(x2) is end
        assert len(engine.calls) == calls  # nothing generated twice
        assert (await search.finish(y1)).steps() == ("y1", "y2", "Answer: 2")
        assert len(engine.calls) == calls + 1

    asyncio.run(go())


def test_best_of_n_samples_n_in_one_request_and_picks_by_score():
    result, engine, _ = run(best_of_n, best_of_n.Params(n_candidates=3))
    assert len(engine.calls) == 1 and engine.calls[0][1].n == 3
    assert result.best.text == "z1\nz2\nAnswer: 3"


def test_self_consistency_returns_the_majority_answer():
    votes = {(): ["a", "b", "c"], ("a",): ["Answer: 7"], ("b",): ["Answer: 7"],
             ("c",): ["Answer: 9"]}
    table = {"c": 1.0, "Answer: 9": 1.0, "a": 0.2, "b": 0.2}
    result, _, _ = run(self_consistency, self_consistency.Params(n_candidates=3, n_answers=2),
                       StepEngine(prompt=PROMPT, script=votes), table)
    assert [a.text for a in result.answers] == ["a\nAnswer: 7", "c\nAnswer: 9"]


def test_best_of_n_weighted_vote_sums_the_scores_of_each_answer():
    votes = {(): ["a", "b", "c"], ("a",): ["Answer: 7"], ("b",): ["Answer: 7"],
             ("c",): ["Answer: 9"]}
    table = {"a": 0.6, "b": 0.5, "c": 0.9, "Answer: 7": 1.0, "Answer: 9": 1.0}
    engine = StepEngine(prompt=PROMPT, script=votes)
    best, _, _ = run(best_of_n, best_of_n.Params(n_candidates=3), engine, table)
    assert best.best.text == "c\nAnswer: 9"  # the single best path: 0.9
    voted, _, _ = run(best_of_n, best_of_n.Params(n_candidates=3, selection="weighted_vote",
                                                  n_answers=2), engine, table)
    # 7 gathers 0.6 + 0.5 = 1.1 against 0.9; its representative is its best path
    assert [a.text for a in voted.answers] == ["a\nAnswer: 7", "c\nAnswer: 9"]
    # a near-zero score is almost no vote: two wrong-but-agreeing paths lose to one good one
    table = {**table, "a": 0.01, "b": 0.01}
    voted, _, _ = run(best_of_n, best_of_n.Params(n_candidates=3, selection="weighted_vote"),
                      engine, table)
    assert voted.best.text == "c\nAnswer: 9"


@pytest.mark.parametrize("strategy, params", [
    (mcts, mcts.Params(simulations=4, n_candidates=3, evaluation="rollout")),
    (tot, tot.Params(max_depth=2)),
    (beam, beam.Params()),
])
def test_step_searches_can_conclude_by_weighted_vote(strategy, params):
    votes = {(): ["a", "b", "c"], ("a",): ["Answer: 7"], ("b",): ["Answer: 7"],
             ("c",): ["Answer: 9"]}
    table = {"a": 0.6, "b": 0.5, "c": 0.9, "Answer: 7": 1.0, "Answer: 9": 1.0}
    engine = StepEngine(prompt=PROMPT, script=votes)
    best, _, _ = run(strategy, params, engine, table)
    assert best.best.text == "c\nAnswer: 9"
    voted, _, _ = run(strategy, replace(params, selection="weighted_vote"), engine, table)
    assert voted.best.text == "a\nAnswer: 7"  # 0.6 + 0.5 against 0.9


def test_tot_weighted_vote_counts_a_kept_finished_path_once():
    # Breadth 1: "Answer: 9" (under s) is kept, the two "Answer: 7" paths are pruned. Counted
    # once each, 7 gathers 0.6 + 0.6 against 9's 0.9; counting the kept one twice would give
    # 9 1.8.
    script = {(): ["s", "Answer: 7", "t"], ("s",): ["Answer: 9", "Answer: 7"]}
    table = {"s": 0.95, "Answer: 7": 0.6, "t": 0.3, "Answer: 9": 0.9}
    params = tot.Params(beam_width=1, max_depth=2, selection="weighted_vote")
    result, _, _ = run(tot, params, StepEngine(prompt=PROMPT, script=script), table)
    assert result.best.text.endswith("Answer: 7")


def test_n_answers_are_distinct():
    result, _, _ = run(best_of_n, best_of_n.Params(n_candidates=6, n_answers=3))
    assert len({a.text for a in result.answers}) == len(result.answers) == 3


@pytest.mark.parametrize("budget", [{"budget_tokens": 3}, {"max_nodes": 2}, {"timeout_s": 0}])
def test_a_spent_budget_stops_the_search_and_still_answers(budget):
    result, engine, _ = run(mcts, mcts.Params(simulations=50, **budget))
    assert result.stats.stopped_by == next(iter(budget))
    assert len(engine.calls) <= 2
    assert result.answers and result.best.steps


@pytest.mark.parametrize("strategy, params", [
    (mcts, mcts.Params(simulations=50, evaluation="rollout")),
    (beam, beam.Params(beam_width=1)),
    (tot, tot.Params(beam_width=1)),
])
def test_a_search_stops_once_a_finished_path_reaches_stop_score(strategy, params):
    # one first step is a whole solution scoring 0.9; the best path takes four steps
    script = {(): ["a", "Answer: 1", "b"], ("a",): ["a2"], ("a", "a2"): ["a3"],
              ("a", "a2", "a3"): ["Answer: 2"], ("b",): ["Answer: 3"]}
    table = {"a": 0.95, "Answer: 1": 0.9, "b": 0.2, "a2": 0.95, "a3": 0.95, "Answer: 2": 0.95}
    full, full_engine, _ = run(strategy, params, StepEngine(prompt=PROMPT, script=script), table)
    assert full.stats.stopped_by is None and full.best.text == "a\na2\na3\nAnswer: 2"
    early, early_engine, _ = run(strategy, replace(params, stop_score=0.9),
                                 StepEngine(prompt=PROMPT, script=script), table)
    assert early.stats.stopped_by == "stop_score"
    assert len(early_engine.calls) < len(full_engine.calls)
    assert early.best.score >= 0.9
    # a bar no path reaches changes nothing
    high, _, _ = run(strategy, replace(params, stop_score=0.99),
                     StepEngine(prompt=PROMPT, script=script), table)
    assert high.stats.stopped_by is None and high.best.text == full.best.text


def test_beam_still_answers_with_a_finished_path_it_pruned_when_the_beams_end_worse():
    script = {(): ["a", "Answer: 1"], ("a",): ["a2"], ("a", "a2"): ["Answer: 2"]}
    table = {"a": 0.95, "Answer: 1": 0.9, "a2": 0.5, "Answer: 2": 0.5}
    result, _, _ = run(beam, beam.Params(beam_width=1, n_candidates=2),
                       StepEngine(prompt=PROMPT, script=script), table)
    assert result.best.text == "Answer: 1"  # cut in round one (0.9 < 0.95); "a" ends at 0.5


ALL = [(greedy, greedy.Params()), (best_of_n, best_of_n.Params(n_candidates=3)),
       (self_consistency, self_consistency.Params(n_candidates=3)),
       (beam, beam.Params()), (tot, tot.Params()),
       (mcts, mcts.Params(simulations=8, n_candidates=3)),
       (mcts, mcts.Params(simulations=8, n_candidates=3, evaluation="rollout"))]


@pytest.mark.parametrize("max_tokens", [1, 4, 5, 8])
@pytest.mark.parametrize("strategy, params", ALL)
def test_max_tokens_bounds_every_strategys_answer(strategy, params, max_tokens):
    # TRAP's paths are 14-16 characters (one token each); the answer may take max_tokens
    result, engine, _ = run(strategy, replace(params, max_tokens=max_tokens))
    for answer in result.answers:
        assert 0 < len(answer.text) <= max_tokens, answer.text
        assert answer.finish_reason == "length"
    # no request asked for more than the answer's room after the path it continues
    for prompt, sampling in engine.calls:
        written = prompt[len(PROMPT):]
        assert len(written) + sampling.max_tokens <= max(max_tokens, len(written) + 1)


@pytest.mark.parametrize("strategy, params", ALL)
def test_max_tokens_that_fit_the_answer_change_nothing(strategy, params):
    roomy, _, _ = run(strategy, replace(params, seed=3, max_tokens=16))
    default, _, _ = run(strategy, replace(params, seed=3))
    assert roomy.best.text == default.best.text and roomy.best.finish_reason == "stop"


def test_a_zero_token_budget_returns_an_unfinished_answer():
    result, engine, _ = run(beam, beam.Params(budget_tokens=1))
    assert result.stats.stopped_by == "budget_tokens"
    assert result.best.finish_reason == "length"


def test_seeded_searches_send_the_same_requests():
    _, first, _ = run(mcts, mcts.Params(simulations=5, seed=7))
    _, second, _ = run(mcts, mcts.Params(simulations=5, seed=7))
    assert [p.seed for _, p in first.calls] == [p.seed for _, p in second.calls]
    assert all(p.seed is not None for _, p in first.calls if p.temperature > 0)


def test_progress_reports_the_best_path_as_it_changes():
    seen = []
    run(beam, beam.Params(), on_progress=seen.append)
    assert seen and seen[-1] == "z1\nz2\nAnswer: 3"
    assert all(a != b for a, b in zip(seen, seen[1:]))


def test_cancelling_a_search_leaves_no_engine_request_running():
    engine = StepEngine(prompt=PROMPT, script=TRAP, delay_s=0.05)

    async def scenario():
        score, _ = scorer()
        task = asyncio.create_task(beam.run(problem(), engine, score, beam.Params()))
        await asyncio.sleep(0.07)  # inside the second round
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert engine.calls and not engine.running and engine.aborted


def test_stats_count_every_generated_token():
    result, engine, _ = run(best_of_n, best_of_n.Params(n_candidates=3))
    # one token per character, and each solution's EOS
    assert result.stats.generated_tokens == sum(len(t) + 1 for t in (
        "x1\nx2\nAnswer: 1", "y1\ny2\nAnswer: 2", "z1\nz2\nAnswer: 3"))
    assert result.best.tokens == len("z1\nz2\nAnswer: 3") + 1
    assert 0 < result.stats.busy_s <= result.stats.wall_s


def test_scoring_counts_as_engine_work():
    """The PRM and ORM run on the engine: a search whose time goes to scoring is busy."""

    class SlowVerifier(TableVerifier):
        async def score(self, items, context):
            await asyncio.sleep(0.05)
            return await super().score(items, context)

    verifier = SlowVerifier(SCORES)
    engine = StepEngine(prompt=PROMPT, script=TRAP)
    result = asyncio.run(beam.run(problem(), engine, Scorer({"table": verifier}, {"table": 1.0}),
                                  beam.Params()))
    assert len(verifier.batches) >= 2
    assert result.stats.busy_s >= 0.05 * len(verifier.batches) * 0.9
    assert result.stats.busy_s <= result.stats.wall_s
