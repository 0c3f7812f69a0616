"""The prm verifier against a scripted engine: queries, adapter scope, probabilities."""

import contextlib
import math

import pytest

from engine.protocol import Choice, GenerationOutput
from verifiers.builtin.prm import PRMVerifier
from verifiers.label_scoring import paths
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps


def label_logprobs(context: str) -> dict[str, float]:
    good = 0.9 if context.endswith("=12 #") else 0.2
    return {"+": math.log(good), "-": math.log(1 - good), "\n": -5.0}


class ScriptedPRM:
    """Next-token and prompt logprobs of a PRM that trusts steps ending in "=12"."""

    def __init__(self):
        self.queries = []  # next-token requests
        self.paths = []  # prompt-logprobs requests

    def encode(self, text, add_special_tokens=True):
        return [ord(c) for c in text]

    async def next_token_logprobs(self, prompt, k, adapter=None):
        self.queries.append((prompt, k, adapter))
        return label_logprobs(prompt)

    async def generate(self, prompt, params, request_id, adapter=None):
        text = "".join(map(chr, prompt))
        self.paths.append((text, params.prompt_logprobs, adapter))
        positions = [None] + [label_logprobs(text[:i]) for i in range(1, len(text))]
        yield GenerationOutput(request_id, prompt, [Choice(0, "x", [120], None, "length")],
                               True, prompt_logprobs=positions)


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


async def test_lone_steps_are_scored_after_their_tag_under_one_adapter_scope(deps, scopes):
    verifier = PRMVerifier(deps)
    items = [StepItem("Compute: 2+3*4", ("3*4=12",)),
             StepItem("Compute: 2+3*4", ("3*4=13",))]
    scores = await verifier.score(items, ScoringContext())
    assert scores == [pytest.approx(0.9), pytest.approx(0.2)]
    assert sorted(deps.engine.queries) == [
        ("Compute: 2+3*4\n3*4=12 #", 5, "my-prm-resident"),
        ("Compute: 2+3*4\n3*4=13 #", 5, "my-prm-resident")]
    assert scopes == ["my-prm"]


async def test_the_steps_of_one_path_are_one_prompt_logprobs_request(deps):
    verifier = PRMVerifier(deps)
    steps = ("3*4=12", "2+12=15", "Answer: 15")
    items = [StepItem("Compute: 2+3*4", steps[: i + 1]) for i in range(3)]
    lone = StepItem("Compute: 2+3*4", ("3*4=12", "2+12=14"))
    scores = await verifier.score([*items, lone], ScoringContext())
    assert scores == [pytest.approx(s) for s in (0.9, 0.2, 0.2, 0.2)]
    # the whole tagged path once, read at every tag; the other path's step on its own
    assert deps.engine.paths == [("Compute: 2+3*4\n3*4=12 #\n2+12=15 #\nAnswer: 15 #\n", 5,
                                  "my-prm-resident")]
    assert [q[0] for q in deps.engine.queries] == ["Compute: 2+3*4\n3*4=12 #\n2+12=14 #"]


def test_paths_group_the_prefixes_of_each_longest_item():
    a = StepItem("Q", ("x",))
    ab = StepItem("Q", ("x", "y"))
    ac = StepItem("Q", ("x", "z"))
    other = StepItem("R", ("x",))
    assert paths([a, ab, ac, other]) == [[0, 1], [2], [3]]


def test_needs_an_engine_and_adapters():
    with pytest.raises(ValueError, match="needs an engine"):
        PRMVerifier(VerifierDeps())
