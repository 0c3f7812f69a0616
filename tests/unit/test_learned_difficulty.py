"""The `learned` difficulty estimator against a scripted engine: it asks the difficulty adapter
for the next token after the question's tag and turns the label odds into d."""

import contextlib
import math
from dataclasses import dataclass, field

import pytest

from search.difficulty.learned import LearnedEstimator, difficulty_query
from search.difficulty.registry import discover_estimators
from search.problem import SearchProblem
from tests.fakes import FakeEngine
from verifiers.reward_format import BAD, GOOD
from verifiers.registry import VerifierDeps


def labels(good: float, bad: float) -> dict[str, float]:
    """Top logprobs with the label tokens at these probabilities and the rest on "7"."""
    return {GOOD: math.log(good), BAD: math.log(bad), "7": math.log(1.0 - good - bad)}


@dataclass
class LabelEngine(FakeEngine):
    """Scripted next-token logprobs (cut to the top k), recording every query."""

    top: dict[str, float] = field(default_factory=lambda: labels(0.25, 0.25))
    queries: list[tuple[str, int, str | None]] = field(default_factory=list)

    async def next_token_logprobs(self, prompt, k, adapter=None) -> dict[str, float]:
        assert adapter is None or adapter in self.adapters, f"adapter {adapter} not resident"
        self.queries.append((prompt, k, adapter))
        return dict(sorted(self.top.items(), key=lambda kv: -kv[1])[:k])


def deps_for(engine: FakeEngine, config: dict | None = None) -> tuple[VerifierDeps, list[str]]:
    """Deps whose adapter scope makes the adapter resident while it is held, and the names held."""
    scopes: list[str] = []

    @contextlib.asynccontextmanager
    async def adapter_scope(name: str):
        scopes.append(name)
        engine.adapters[name] = f"/adapters/{name}"
        try:
            yield name
        finally:
            del engine.adapters[name]

    return VerifierDeps(engine=engine, config={"learned": config or {}},
                        adapter_scope=adapter_scope), scopes


def problem(question: str = "Compute: 22+36+26") -> SearchProblem:
    return SearchProblem(prompt=question + "\n", question=question)


async def test_favouring_bad_means_hard_and_good_means_easy():
    hard_engine, easy_engine = LabelEngine(top=labels(0.1, 0.6)), LabelEngine(top=labels(0.7, 0.1))
    hard = await LearnedEstimator(deps_for(hard_engine)[0]).estimate(problem())
    easy = await LearnedEstimator(deps_for(easy_engine)[0]).estimate(problem())
    assert hard == pytest.approx(0.6 / 0.7) and hard > 0.5
    assert easy == pytest.approx(0.1 / 0.8) and easy < 0.5


async def test_queries_the_adapter_with_the_question_and_tag():
    engine = LabelEngine()
    deps, scopes = deps_for(engine, {"adapter": "my-difficulty", "top_k": 5})
    estimator = LearnedEstimator(deps)
    d = await estimator.estimate(problem("Numbers: 1 3 3 4 6 8 Target: 24"))
    assert d == pytest.approx(0.5)
    assert engine.queries == [(difficulty_query("Numbers: 1 3 3 4 6 8 Target: 24"), 5,
                               "my-difficulty")]
    assert scopes == ["my-difficulty"] and engine.adapters == {}  # released afterwards
    assert estimator.name == "learned" and estimator.adapter == "my-difficulty"


async def test_defaults_and_labels_outside_the_top_k():
    # GOOD is third of three, so top_k 2 leaves it out: it gets the smallest listed logprob
    engine = LabelEngine(top=labels(0.05, 0.3))
    d = await LearnedEstimator(deps_for(engine, {"top_k": 2})[0]).estimate(problem())
    assert d == pytest.approx(0.3 / (0.3 + 0.3)) and engine.queries[0][1] == 2
    assert await LearnedEstimator(deps_for(engine)[0]).estimate(problem()) == \
        pytest.approx(0.3 / 0.35)
    assert engine.queries[-1][1:] == (20, "difficulty")  # the default config
    engine.top = {"7": -0.1, "8": -3.0}  # neither label listed: no opinion
    assert await LearnedEstimator(deps_for(engine)[0]).estimate(problem()) == 0.5


def test_missing_deps_raise_with_the_fix():
    for deps in (None, VerifierDeps(), VerifierDeps(engine=FakeEngine()),
                 VerifierDeps(adapter_scope=object())):
        with pytest.raises(ValueError, match="engine and an adapter registry"):
            LearnedEstimator(deps)
    with pytest.raises(ValueError, match="top_k"):
        LearnedEstimator(deps_for(FakeEngine(), {"top_k": 1})[0])


def test_registered_under_its_name():
    estimators = discover_estimators(deps_for(LabelEngine())[0])
    assert isinstance(estimators["learned"], LearnedEstimator)
