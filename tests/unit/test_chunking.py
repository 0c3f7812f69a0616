"""Bounded-context reasoning (search.chunking) through the Sampler and the strategies, on an
arithmetic oracle that reads only its prompt (tests.search_fakes.ArithmeticOracle)."""

from __future__ import annotations

import asyncio

import pytest

from search.chunking import Chunker, Chunking
from search.problem import SearchProblem
from search.strategies import beam, best_of_n, greedy
from tests.search_fakes import ArithmeticOracle
from training.tasks import arithmetic, long_arithmetic
from verifiers.builtin.logic import LogicVerifier
from verifiers.scorer import Scorer
from verifiers.states.arithmetic import remaining

LONG = long_arithmetic.generate(0, 1, 50)[0]  # prompt + worked solution: about 690 characters
PROMPT = LONG.prompt + "\n"
SOLUTION = arithmetic.solution(LONG)


def problem(chunking: Chunking | None) -> SearchProblem:
    return SearchProblem(prompt=PROMPT, question=LONG.prompt, chunking=chunking)


def state(chunk_tokens: int, carry_tokens: int = 16, **kw) -> Chunking:
    return Chunking(chunk_tokens=chunk_tokens, carry="state", carry_tokens=carry_tokens,
                    state=remaining, render=lambda q: [ord(c) for c in q + "\n"], **kw)


def run(strategy, chunking, engine=None, **params):
    engine = engine or ArithmeticOracle(max_model_len=4096)
    scorer = Scorer({"logic": LogicVerifier()}, {"logic": 1.0})
    make = strategy.params if hasattr(strategy, "params") else strategy.Params
    params = make(**{"max_tokens": 4096, "seed": 1, "max_steps": 200, **params})
    result = asyncio.run(strategy.run(problem(chunking), engine, scorer, params))
    return result, engine


def test_the_workload_is_longer_than_the_window():
    assert len(PROMPT) + len(SOLUTION) > 512 + 100


def test_last_m_carries_the_prompt_and_the_last_m_tokens_of_the_chunk_before():
    c, m = 120, 40
    result, engine = run(greedy, Chunking(chunk_tokens=c, carry="last", carry_tokens=m))
    assert result.best.text == SOLUTION
    assert result.best.finish_reason == "stop"
    written = SOLUTION
    end, start = c, 0
    for k, (text, params) in enumerate(engine.calls):
        # the prompt, then the path from the chunk's start: nothing else
        assert text == PROMPT + written[start:len(text) - len(PROMPT) + start]
        assert len(text) == len(PROMPT) + (0 if k == 0 else m)  # each chunk carries m
        assert len(text) - len(PROMPT) + params.max_tokens <= c  # never past the chunk
        start, end = end - m, end - m + c
    chunks = result.details["context"]["chunks"]
    assert chunks == len(engine.calls) == 1 + -(-(len(written) + 1 - c) // (c - m))
    assert result.stats.generated_tokens == len(written) + 1  # every token counted once


def test_state_carries_the_remaining_expression_and_the_step_the_chunk_cut():
    result, engine = run(greedy, state(100))
    assert result.best.text == SOLUTION
    assert len(engine.calls) > 5
    lines = [i + 1 for i, ch in enumerate(SOLUTION) if ch == "\n"]
    for text, _ in engine.calls[1:]:
        question, _, tail = text.partition("\n")
        assert len(question) < len(LONG.prompt)
        assert "\n" not in tail  # only the step the chunk cut is carried
        # the expression that the steps before the carried one left, exactly
        assert any(remaining(LONG.prompt, SOLUTION[:at]) == question
                   and SOLUTION[at:].startswith(tail) for at in lines)
    assert result.stats.max_context_tokens <= len(PROMPT) + 100


def test_memory_stays_bounded_by_the_chunk_times_the_live_paths():
    c = 100
    result, engine = run(beam, state(c), beam_width=2, n_candidates=2, temperature=1.0)
    assert arithmetic.check(LONG, result.best.text)
    live = 2 * 2  # beam_width x candidates per beam
    assert result.stats.peak_kv_tokens <= live * (len(PROMPT) + c)
    assert max(len(t) + p.max_tokens for t, p in engine.calls) <= len(PROMPT) + c
    plain, _ = run(beam, None, beam_width=2, n_candidates=2, temperature=1.0)
    assert plain.stats.max_context_tokens > 2 * result.stats.max_context_tokens


def test_sampled_completions_each_go_on_in_their_own_chunks():
    result, engine = run(best_of_n, state(90), n_candidates=3, temperature=1.0)
    assert arithmetic.check(LONG, result.best.text)
    assert engine.calls[0][1].n == 3 and all(p.n == 1 for _, p in engine.calls[1:])


def test_a_path_that_fills_its_last_chunk_ends_there_cut():
    result, engine = run(greedy, Chunking(chunk_tokens=100, carry="last", carry_tokens=20,
                                          max_chunks=3))
    assert result.best.finish_reason == "length"
    assert result.best.tokens == 100 + 2 * 80
    assert len(engine.calls) == 3


def test_a_chunk_must_hold_more_than_its_carry_over():
    with pytest.raises(ValueError, match="carry_tokens .* must be below chunk_tokens"):
        Chunking(chunk_tokens=64, carry_tokens=64)
    with pytest.raises(ValueError, match="state function"):
        Chunking(chunk_tokens=64, carry="state")


def test_a_chunk_without_a_step_boundary_carries_the_last_tokens():
    chunker = Chunker(state(8, carry_tokens=3), "Compute: 1+2", [1, 2], decode=lambda ids:
                      "".join(map(chr, ids)))
    path = [ord(c) for c in "12345678901"]
    view = chunker.view(path)
    assert (view.prefix, view.start, view.end) == ((1, 2), 5, 13)


@pytest.mark.parametrize("text, expected", [
    ("", "Compute: 48+17*3-29*2+11"),
    ("17*3=51\n", "Compute: 48+51-29*2+11"),
    ("17*3=51\n29*2=58\n48+51=99\n99-5", "Compute: 99-58+11"),  # the cut line is not read
    ("17*3=51\n29*2=58\n48+51=99\n99-58=41\n41+11=52\n", "Compute: 52"),
    ("48+17=65\n", None),  # against precedence
    ("17*3=52\n", None),  # wrong
    ("Let me think\n", None),
])
def test_the_arithmetic_state_is_the_expression_that_remains(text, expected):
    assert remaining("Compute: 48+17*3-29*2+11", text) == expected


@pytest.mark.parametrize("name", ["greedy", "beam", "mcts", "tot", "best_of_n",
                                  "self_consistency"])
def test_every_strategy_answers_a_path_longer_than_the_window_in_chunks(name):
    from search.registry import STRATEGIES

    engine = ArithmeticOracle(max_model_len=512)  # refuses any request past 512 positions
    result, engine = run(STRATEGIES[name], state(120), engine=engine, temperature=1.0)
    assert result.best.text == SOLUTION
    assert result.details["context"]["chunks"] > 3
    assert result.stats.max_context_tokens <= len(PROMPT) + 120
