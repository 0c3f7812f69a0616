"""Fused symbolic steps (reasoning.symbolic_steps): the symbolic engine's computed step joins
a step search's candidates beside the model's own, and the response says how many it added
and how many the answer uses."""

from __future__ import annotations

import asyncio

from search.problem import SearchProblem
from search.strategies import beam, mcts
from search.symbolic import symbolic_steps
from tests.search_fakes import StepEngine
from verifiers.physics.units import UnitsVerifier
from verifiers.protocol import ScoringContext
from verifiers.scorer import Scorer

QUESTION = "Physics: m=2000 g, a=2 m/s^2. Find F in N."
PROMPT = QUESTION + "\n"
# The model converts wrongly, then (from the right mass) multiplies wrongly, then answers wrongly.
SCRIPT = {
    (): ["m=2000 g=3 kg"],
    ("m=2000 g=3 kg",): ["F=m*a=3*2=6 N"],
    ("m=2000 g=3 kg", "F=m*a=3*2=6 N"): ["Answer: 6 N"],
    ("m=2000 g=2 kg",): ["F=m*a=2*2=5 N"],
    ("m=2000 g=2 kg", "F=m*a=2*2=5 N"): ["Answer: 5 N"],
    ("m=2000 g=2 kg", "F=m*a=2*2=4 N"): ["Answer: 5 N"],
}


def search(strategy, params, context=ScoringContext()):
    engine = StepEngine(prompt=PROMPT, script=SCRIPT)
    scorer = Scorer({"units": UnitsVerifier()}, {"units": 1.0})
    problem = SearchProblem(prompt=PROMPT, question=QUESTION, context=context)
    return asyncio.run(strategy.run(problem, engine, scorer, params)), engine


def test_without_symbolic_steps_beam_follows_the_models_wrong_numbers():
    result, _ = search(beam, beam.Params(beam_width=1, n_candidates=1))
    assert result.best.text.endswith("Answer: 6 N")
    assert "symbolic_steps" not in result.details


def test_beam_takes_the_computed_steps_and_reports_them():
    result, engine = search(beam, beam.Params(beam_width=1, n_candidates=1, symbolic_steps=True,
                                              return_trace=True))
    assert result.best.text == "m=2000 g=2 kg\nF=m*a=2*2=4 N\nAnswer: 4 N"
    assert result.best.score == 1.0
    assert result.details["symbolic_steps"] == {"proposed": 3, "in_answer": 3}
    symbolic = [n["text"] for n in result.trace if n.get("symbolic")]
    assert symbolic == ["m=2000 g=2 kg", "F=m*a=2*2=4 N", "Answer: 4 N"]
    # the computed steps cost no generated tokens: one engine request a round, and the tokens
    # are the model's three steps (each with its delimiter or end of sequence)
    assert len(engine.calls) == 3 and result.stats.generated_tokens == sum(
        len(s) + 1 for s in ("m=2000 g=3 kg", "F=m*a=2*2=5 N", "Answer: 5 N"))


def test_mcts_also_expands_with_computed_steps():
    result, _ = search(mcts, mcts.Params(max_depth=3, simulations=6, n_candidates=1,
                                         symbolic_steps=True))
    assert result.best.text.endswith("Answer: 4 N")
    assert result.details["symbolic_steps"]["proposed"] >= 3


def test_bad_physics_options_in_the_context_compute_nothing():
    good = SearchProblem(prompt=PROMPT, question=QUESTION)
    bad = SearchProblem(prompt=PROMPT, question=QUESTION,
                        context=ScoringContext(extra={"physics": {"tolerance": 5}}))
    assert symbolic_steps(good, (), ["m=2000 g=3 kg"]) == [(0, "m=2000 g=2 kg")]
    assert symbolic_steps(bad, (), ["m=2000 g=3 kg"]) == []
