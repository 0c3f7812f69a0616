"""The serving-time guard: a search's answer on which the learned verifiers and the exact ones
disagree strongly is flagged in `reasoning.verifier_disagreement` and counted."""

from __future__ import annotations

import pytest

from server.reasoning.metrics import VERIFIER_DISAGREEMENTS
from tests.search_fakes import StepEngine
from verifiers.builtin.logic import LogicVerifier
from verifiers.builtin.orm import ORMVerifier
from verifiers.builtin.prm import PRMVerifier
from verifiers.builtin.syntax import SyntaxVerifier
from verifiers.disagreement import disagreement, verifier_kind

PROMPT = "Compute: 2+3*4\n"
# the first candidate is an arithmetic slip that `logic` rejects
SCRIPT = {
    (): ["3*4=13", "3*4=12"],
    ("3*4=13",): ["2+13=15"], ("3*4=13", "2+13=15"): ["Answer: 15"],
    ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"],
}
KINDS = {"prm": "learned", "orm": "learned", "logic": "exact", "syntax": "exact", "x": None}


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT)


def test_the_built_ins_say_which_kind_they_are():
    assert [verifier_kind(v) for v in (PRMVerifier, ORMVerifier, LogicVerifier, SyntaxVerifier)] \
        == ["learned", "learned", "exact", "exact"]
    assert verifier_kind(object()) is None


@pytest.mark.parametrize("scores, gap, direction", [
    ({"prm": 0.92, "orm": 0.8, "logic": 0.0}, 0.8, "learned_higher"),  # the orm is the sceptic
    ({"prm": 0.02, "logic": 1.0, "syntax": 1.0}, -0.98, "exact_higher"),
])
def test_each_kind_is_judged_by_its_most_sceptical_verifier(scores, gap, direction):
    report = disagreement(scores, KINDS, threshold=0.5)
    assert report["gap"] == pytest.approx(gap) and report["direction"] == direction
    assert set(report["learned"]) | set(report["exact"]) == set(scores)


@pytest.mark.parametrize("scores", [
    {"prm": 0.7, "logic": 1.0},  # 0.3 apart: below the threshold
    {"prm": 0.9, "x": 0.0},  # x says no kind: nothing exact to compare with
    {"logic": 0.0, "syntax": 1.0},  # no learned verifier
])
def test_no_report_when_they_agree_or_cannot_be_compared(scores):
    assert disagreement(scores, KINDS, threshold=0.5) is None


class LearnedJudge:
    """A learned plugin (like the prm) that likes every step, and records what it was asked."""

    name = "judge"
    cost = 1
    exact = False

    def __init__(self):
        self.seen = []

    async def score(self, items, context):
        self.seen += [item.step for item in items]
        return [0.9] * len(items)


# best_of_n with one candidate answers with the first: the slip
SLIP = {"strategy": "best_of_n", "n_candidates": 1, "verifiers": {"logic": 1, "judge": 1}}


def chat(reasoning: dict) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": PROMPT.strip()}],
            "max_tokens": 64, "reasoning": reasoning}


def counted(direction: str) -> float:
    return VERIFIER_DISAGREEMENTS.labels(direction=direction)._value.get()


@pytest.mark.parametrize("gate", [1e-3, 0])
async def test_a_chosen_answer_the_exact_check_rejects_is_flagged_and_counted(app, client, gate):
    app.state.settings.search_verifier_gate = gate
    judge = LearnedJudge()
    app.state.verify_service.registry.verifiers["judge"] = judge
    before = counted("learned_higher")
    r = await client.post("/v1/chat/completions", json=chat(SLIP))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"].endswith("Answer: 15")  # the slip
    report = body["reasoning"]["verifier_disagreement"]
    assert report == {"learned": {"judge": 0.9}, "exact": {"logic": 0.0}, "gap": 0.9,
                      "direction": "learned_higher", "threshold": 0.5}
    # with the gate the judge was not asked about the slip during the search, but was after it
    assert "3*4=13" in judge.seen
    assert body["reasoning"]["steps"][0]["scores"] == (
        {"logic": 0.0} if gate else {"logic": 0.0, "judge": 0.9})
    assert counted("learned_higher") == before + 1
    text = (await client.get("/metrics")).text
    assert 'deliberate_verifier_disagreements_total{direction="learned_higher"}' in text


async def test_an_answer_both_kinds_like_is_not_flagged(app, client):
    app.state.verify_service.registry.verifiers["judge"] = LearnedJudge()
    before = counted("learned_higher") + counted("exact_higher")
    body = (await client.post("/v1/chat/completions", json=chat(
        {"strategy": "beam", "verifiers": {"logic": 1, "judge": 1}}))).json()
    assert body["choices"][0]["message"]["content"].endswith("Answer: 14")
    assert body["reasoning"]["verifier_disagreement"] is None
    assert counted("learned_higher") + counted("exact_higher") == before


async def test_a_threshold_of_zero_turns_the_comparison_off(app, client):
    app.state.settings.verifier_disagreement_threshold = 0
    judge = LearnedJudge()
    app.state.verify_service.registry.verifiers["judge"] = judge
    body = (await client.post("/v1/chat/completions", json=chat(SLIP))).json()
    assert body["reasoning"]["verifier_disagreement"] is None
    assert "3*4=13" not in judge.seen  # nor asked about the steps the gate kept from it
