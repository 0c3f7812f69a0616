"""Built-in verifiers on hand-made good and bad steps."""

import pytest

from verifiers.builtin.claims import evaluate
from verifiers.builtin.factual import FactualVerifier
from verifiers.builtin.logic import LogicVerifier
from verifiers.builtin.safety import SafetyVerifier
from verifiers.builtin.syntax import SyntaxVerifier
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps

ARITH = "Compute: 48+17*3-29*2+11"
COUNTDOWN = "Numbers: 3 7 25 50 Target: 353"


def item(problem, *steps, final=False):
    return StepItem(problem=problem, steps=tuple(steps), is_final=final)


async def scores(verifier, items, context=ScoringContext()):
    return await verifier.score(items, context)


@pytest.mark.parametrize("step, expected", [
    ("17*3=51", 1.0), ("17*3=52", 0.0), ("48+51=99", 1.0), ("99-58=41", 1.0), ("99-58=40", 0.0),
    ("350/7=50", 1.0), ("351/7=50", 0.0), ("(2+3)*4 = 20", 1.0), ("2+3*4=20", 0.0),
    ("Answer: 52", 1.0), ("no claim here", 1.0), ("1+1=2 and 2*2=5", 0.0),
])
async def test_logic_recomputes_every_claim(step, expected):
    assert await scores(LogicVerifier(), [item(ARITH, step)]) == [expected]


def test_claim_evaluation_is_exact_and_refuses_non_arithmetic():
    assert evaluate("12/4") == 3 and evaluate("13/4") is None and evaluate("2**100") is None
    assert evaluate("__import__('os')") is None and evaluate("1/0") is None


@pytest.mark.parametrize("problem, steps, final, expected", [
    (ARITH, ["17*3=51"], False, 1.0),
    (ARITH, ["17*3=51", "Answer: 52"], True, 1.0),
    (ARITH, ["17 times 3 is 51"], False, 0.0),
    (ARITH, ["50/2=25"], False, 0.0),  # no division in arithmetic
    (ARITH, ["17*3=51"], True, 0.0),  # a final path ends with its Answer line
    (ARITH, ["Answer: 52", "1+1=2"], False, 0.0),  # nothing after the Answer line
    (COUNTDOWN, ["50/2=25"], False, 1.0),
    (COUNTDOWN, ["50*7=350", "Answer: 353"], True, 1.0),
    ("What is love?", ["anything"], False, 1.0),  # unknown task: form not judged
])
async def test_syntax_checks_the_form_for_the_task(problem, steps, final, expected):
    assert await scores(SyntaxVerifier(), [item(problem, *steps, final=final)]) == [expected]


async def test_safety_blocks_global_and_per_key_patterns():
    deps = VerifierDeps(config={"safety": {"blocked_patterns": [r"rm -rf"],
                                           "key_policies": {"kid": [r"\bbeer\b"]}}})
    verifier = SafetyVerifier(deps)
    items = [item("q", "run rm -rf /"), item("q", "buy beer"), item("q", "2+2=4")]
    assert await scores(verifier, items) == [0.0, 1.0, 1.0]
    assert await scores(verifier, items, ScoringContext(api_key_id="kid")) == [0.0, 0.0, 1.0]


async def test_factual_agrees_with_request_evidence_and_corpus(tmp_path):
    corpus = tmp_path / "facts.txt"
    corpus.write_text("The capital of France is Paris\n")
    verifier = FactualVerifier(VerifierDeps(config={"factual": {"corpus_paths": [str(corpus)],
                                                                "neutral": 0.5}}))
    context = ScoringContext(evidence=("boiling point of water = 100 C",))
    items = [item("q", "The capital of France is Paris."),
             item("q", "the capital of france is Lyon"),
             item("q", "Boiling point of water = 100 c"),
             item("q", "boiling point of water = 90 C"),
             item("q", "the sky is blue")]
    assert await scores(verifier, items, context) == [1.0, 0.0, 1.0, 0.0, 0.5]
