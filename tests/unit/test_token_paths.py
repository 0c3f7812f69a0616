"""Search paths are token ids: on a scripted model with merged BPE-like tokens (".\\n\\n" is one
token), every engine call reads exactly what the model wrote, and the answer is the decoded
generated ids, byte for byte (no vLLM)."""

from __future__ import annotations

import asyncio
import random

import pytest

from search.problem import SearchProblem
from search.steps import StepDelimiter
from search.strategies import beam, best_of_n, greedy, mcts, self_consistency, tot
from tests.search_fakes import TableVerifier, TokenEngine
from verifiers.scorer import Scorer

PROMPT = "<user>Q\n"
VOCAB = (".\n\n", ".\n", "\n\n", "\n", "    ", " the", " sum", "Step", ":\n\n", "\\boxed{")
SOLUTIONS = (
    "Step one.\n\nStep two:\n\n    total = 1 + 2\n    print(total)\n\nSo \\boxed{3}.",
    "Step one.\n\nStep three has the sum.\n\nSo \\boxed{4}.",
    "\n\nStep four.\n\n\n\nStep five.\nSo \\boxed{3}.",
)
STRATEGIES = [(greedy, greedy.Params()), (beam, beam.Params(n_candidates=3)),
              (mcts, mcts.Params(simulations=6, n_candidates=3)),
              (tot, tot.Params(n_candidates=3)), (best_of_n, best_of_n.Params(n_candidates=3)),
              (self_consistency, self_consistency.Params(n_candidates=3))]


def search(strategy, params, engine: TokenEngine, delimiter: str = "\n\n", **problem_kw):
    verifier = TableVerifier({}, other=0.5)
    problem = SearchProblem(prompt=PROMPT, question="Q", delimiter=StepDelimiter.of(delimiter),
                            prompt_token_ids=tuple(engine.encode(PROMPT)), **problem_kw)
    return asyncio.run(strategy.run(problem, engine, Scorer({"t": verifier}, {"t": 1.0}),
                                    params)), verifier


def engine(solutions=SOLUTIONS, **kw) -> TokenEngine:
    return TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=solutions, **kw)


def test_the_fake_tokenizer_merges_like_a_bpe():
    e = engine()
    assert [e.tokens[i] for i in e.encode("one.\n\nTwo")] == ["o", "n", "e", ".\n\n", "T", "w",
                                                              "o"]
    # re-encoding a step's text plus the delimiter gives other ids than the model wrote
    assert e.encode("one.") + e.encode("\n\n") != e.encode("one.\n\n")


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES,
                         ids=[s.NAME for s, _ in STRATEGIES])
@pytest.mark.parametrize("delimiter", ["\n", "\n\n", {"regex": r"\n[ \t]*\n"}])
def test_every_strategy_answers_with_the_decoded_generated_ids(strategy, params, delimiter):
    e = engine()
    result, _ = search(strategy, params, e, delimiter=delimiter)
    prompt = e.encode(PROMPT)
    for answer in result.answers:
        # the answer is a whole solution as the model wrote it, and its text their decoding
        assert list(answer.token_ids[:-1]) in e.written and answer.token_ids[-1] == e.EOS
        assert answer.text == e.decode(answer.token_ids) == SOLUTIONS[
            e.written.index(list(answer.token_ids[:-1]))]
        assert answer.finish_reason == "stop"
    for ids, _ in e.calls:  # (the engine refuses ids the model did not write)
        assert ids[: len(prompt)] == prompt


def test_steps_split_at_blank_lines_and_keep_indentation():
    result, verifier = search(greedy, greedy.Params(), engine(), delimiter="\n\n")
    assert result.best.steps == ("Step one.", "Step two:", "    total = 1 + 2\n    print(total)",
                                 "So \\boxed{3}.")


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES[1:4],
                         ids=[s.NAME for s, _ in STRATEGIES[1:4]])
def test_a_blank_line_between_steps_is_not_a_step_and_branching_goes_on(strategy, params):
    # Solution 3 starts with a blank line and has two blank lines between its steps; with "\n"
    # as the delimiter, a sample that stops at a blank line goes on to the next step.
    e = engine()
    result, verifier = search(strategy, params, e, delimiter="\n")
    steps = {step for answer in result.answers for step in answer.steps}
    assert "" not in steps
    written = {e.decode(ids) for ids in e.outputs}
    assert any(not text.strip() for text in written)  # blank samples, continued, not kept
    seen = {item.step for batch in verifier.items for item in batch}
    assert {"Step four.", "Step five."} & seen or strategy is not beam  # the third branch grew
    assert "" not in seen


def test_each_step_request_extends_the_path_by_the_ids_the_engine_returned():
    e = engine()
    search(beam, beam.Params(n_candidates=3, beam_width=3), e, delimiter="\n\n")
    prompt = e.encode(PROMPT)
    generated = [tuple(ids) for ids in e.outputs]
    for ids, _ in e.calls:
        path = tuple(ids[len(prompt):])
        # the path is a concatenation of earlier outputs, with no token re-encoded
        assert _concatenation(path, generated), path


def _concatenation(path: tuple[int, ...], pieces: list[tuple[int, ...]]) -> bool:
    if not path:
        return True
    return any(path[: len(p)] == p and _concatenation(path[len(p):], pieces)
               for p in pieces if p)


def test_a_step_over_the_step_cap_is_cut_and_the_next_step_continues_it():
    long = "Step " + " the sum" * 40 + ".\n\nSo \\boxed{1}."
    e = engine(solutions=(long,))
    result, _ = search(beam, beam.Params(max_step_tokens=16), e, delimiter="\n\n")
    assert result.best.text == long and result.best.finish_reason == "stop"
    assert max(e.calls, key=lambda c: c[1].max_tokens)[1].max_tokens == 16


def test_the_second_eos_ends_the_solution_not_the_step():
    e = engine(solutions=("Step one.\n\nSo \\boxed{2}.",), second_eos=frozenset({0}))
    for strategy, params in STRATEGIES:
        result, _ = search(strategy, params, e)
        assert result.best.text == "Step one.\n\nSo \\boxed{2}."
        assert result.best.token_ids[-1] == e.EOT and result.best.finish_reason == "stop"
    # a step request saw the second EOS as its stop_reason and did not ask for more
    finals = [ids for ids in e.outputs if ids[-1] == e.EOT]
    assert finals


def test_a_stop_string_of_the_request_ends_the_solution_and_is_not_in_the_answer():
    for strategy, params in STRATEGIES:
        result, _ = search(strategy, params, engine(solutions=(SOLUTIONS[0],)),
                           stop=("print",))
        assert result.best.text == "Step one.\n\nStep two:\n\n    total = 1 + 2\n    "
        assert result.best.finish_reason == "stop"
        assert result.best.steps[-1] == "    total = 1 + 2"  # verifiers do not see it either


def test_max_tokens_cuts_the_path_within_a_step():
    result, _ = search(beam, beam.Params(max_tokens=6), engine(), delimiter="\n\n")
    assert len(result.best.token_ids) == 6 and result.best.finish_reason == "length"
    assert result.best.text == engine().decode(result.best.token_ids)


@pytest.mark.parametrize("seed", range(8))
def test_property_random_solutions_come_back_byte_identical(seed):
    rng = random.Random(seed)
    pieces = ["Step", " the", " sum", " x", ".\n\n", ".\n", "\n\n", "\n", "    ", "  ", ":",
              "\n\n\n", " 1", "é", "\t"]
    solutions = tuple("".join(rng.choice(pieces) for _ in range(rng.randint(3, 30))) + "."
                      for _ in range(rng.randint(1, 4)))
    delimiter = rng.choice(["\n", "\n\n", {"regex": r"\n\s*\n"}])
    strategy, params = rng.choice(STRATEGIES)
    e = TokenEngine(prompt=PROMPT, vocab=VOCAB + tuple(pieces), solutions=solutions)
    result, _ = search(strategy, params, e, delimiter=delimiter)
    for answer in result.answers:
        assert answer.text == e.decode(answer.token_ids)
        assert answer.text in solutions, (answer.text, solutions)


def test_a_step_that_never_ends_is_cut_after_a_bounded_number_of_requests():
    # every line is a trigger stop the pattern does not match
    lines = "".join(f"Step {i}.\n" for i in range(40)) + "\nSo \\boxed{1}."
    e = engine(solutions=(lines,))
    result, _ = search(beam, beam.Params(n_candidates=1, beam_width=1, max_step_tokens=999), e,
                       delimiter={"regex": r"\n\n"})
    assert result.best.text == lines  # cut into several steps, nothing lost
    # a step's request, then at most 16 more from where it stopped: 17 lines a step
    assert [step.count("\n") + 1 for step in result.best.steps[:2]] == [17, 17]
