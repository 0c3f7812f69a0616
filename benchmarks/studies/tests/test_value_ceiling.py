"""benchmarks.studies.value_ceiling's exact value verifier, and its install as an entry-point
plugin."""

from benchmarks.studies.value_ceiling import SolvableVerifier, install_plugin
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps, discover

COUNTDOWN = "Numbers: 3 7 25 50 Target: 353"  # 353 = 50*7 + 3 only


async def test_solvable_scores_dead_ends_zero_and_unknown_questions_one():
    items = [StepItem(COUNTDOWN, ("50*7=350",)), StepItem(COUNTDOWN, ("3+7=10",)),
             StepItem(COUNTDOWN, ("50*7=351",)),
             StepItem(COUNTDOWN, ("50*7=350", "350+3=353", "Answer: 353")),
             StepItem("What is the capital of France?", ("Paris",))]
    assert await SolvableVerifier().score(items, ScoringContext()) == [1.0, 0.0, 0.0, 1.0, 1.0]


def test_the_plugin_is_discovered_through_its_entry_point(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path)))
    registry = discover(VerifierDeps(), allowlist={"solvable", "logic"})
    assert registry.names() == ["logic", "solvable"]
    assert isinstance(registry.get("solvable"), SolvableVerifier)
