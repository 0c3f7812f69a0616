"""The prm verifier against a scripted engine: queries, adapter scope, probabilities."""

import contextlib
import math

import pytest

from verifiers.builtin.prm import PRMVerifier
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps


class ScriptedPRM:
    def __init__(self):
        self.queries = []

    async def next_token_logprobs(self, prompt, k, adapter=None):
        self.queries.append((prompt, k, adapter))
        good = 0.9 if prompt.endswith("=12 #") else 0.2
        return {"+": math.log(good), "-": math.log(1 - good), "\n": -5.0}


@pytest.fixture
def scopes():
    return []


@pytest.fixture
def deps(scopes):
    @contextlib.asynccontextmanager
    async def scope(name):
        scopes.append(name)
        yield f"{name}-resident"

    return VerifierDeps(engine=ScriptedPRM(), config={"prm": {"adapter": "my-prm", "top_k": 5}},
                        adapter_scope=scope)


async def test_each_step_is_scored_after_its_tag_under_one_adapter_scope(deps, scopes):
    verifier = PRMVerifier(deps)
    items = [StepItem("Compute: 2+3*4", ("3*4=12",)),
             StepItem("Compute: 2+3*4", ("3*4=12", "2+12=15"))]
    scores = await verifier.score(items, ScoringContext())
    assert scores == [pytest.approx(0.9), pytest.approx(0.2)]
    assert deps.engine.queries == [("Compute: 2+3*4\n3*4=12 #", 5, "my-prm-resident"),
                                   ("Compute: 2+3*4\n3*4=12 #\n2+12=15 #", 5, "my-prm-resident")]
    assert scopes == ["my-prm"]


def test_needs_an_engine_and_adapters():
    with pytest.raises(ValueError, match="needs an engine"):
        PRMVerifier(VerifierDeps())
