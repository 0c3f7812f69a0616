"""Confidence-gated escalation (server/reasoning/escalation.py): `auto` answers with the
cheapest stage and escalates while the answer's confidence is below the target, within one
budget. The loop on scripted stages, then through the HTTP API on the scripted step engine with
a calibration that trusts the `logic` verifier's answers and doubts a single pass."""

from __future__ import annotations

import pytest

from search.calibration import family_json
from search.problem import Answer, SearchResult, SearchStats
from server.openai.protocol import ChatCompletionRequest
from server.reasoning.escalation import Stage, escalate
from server.reasoning.options import ReasoningOptions
from server.reasoning.service import Decision, ReasoningService
from server.settings import Settings
from tests.search_fakes import StepEngine
from tests.sse import parse_events
from tests.unit.test_confidence_api import served, write_table
from tests.unit.test_reasoning_api import PROMPT, SCRIPT, chat

# ---- the loop -------------------------------------------------------------------------------


def scripted(confidences: dict[str, float], tokens: dict[str, int]):
    """A run_stage whose stages answer with these confidences after these tokens; the calls
    it got."""
    calls: list[tuple[str, int, bool]] = []

    async def run_stage(strategy: str, tokens_left: int, first: bool) -> Stage:
        calls.append((strategy, tokens_left, first))
        answer = Answer(steps=(strategy,), text=strategy, score=1.0, step_scores=(1.0,),
                        verifier_scores={}, step_verifier_scores=({},), finish_reason="stop",
                        tokens=1)
        stats = SearchStats(nodes=1, engine_calls=1, generated_tokens=tokens[strategy],
                            wall_s=0.5)
        return Stage(strategy, SearchResult([answer], stats), confidences[strategy])

    return run_stage, calls


PLAN = ("greedy", "beam", "mcts")
TOKENS = {"greedy": 10, "beam": 40, "mcts": 100}


async def test_a_confident_first_stage_is_the_only_one():
    run_stage, calls = scripted({"greedy": 0.9, "beam": 1.0, "mcts": 1.0}, TOKENS)
    run = await escalate(PLAN, run_stage, 0.8, 1000)
    assert calls == [("greedy", 1000, True)]
    assert run.answered.strategy == "greedy"
    assert run.report == [{"strategy": "greedy", "confidence": 0.9, "tokens": 10,
                           "why": "target reached: confidence 0.90 >= 0.8", "answered": True}]


async def test_below_the_target_it_escalates_until_a_stage_reaches_it():
    run_stage, calls = scripted({"greedy": 0.42, "beam": 0.85, "mcts": 1.0}, TOKENS)
    run = await escalate(PLAN, run_stage, 0.8, 1000, route="difficulty 0.10 routes to greedy")
    assert calls == [("greedy", 1000, True), ("beam", 990, False)]
    assert [s["strategy"] for s in run.report] == ["greedy", "beam"]
    assert run.report[0]["why"] == ("difficulty 0.10 routes to greedy; confidence 0.42 < "
                                    "target 0.8; escalate to beam")
    assert run.answered.strategy == run.last.strategy == "beam"
    result = run.result()
    assert result.answers[0].text == "beam"
    # the stats count every stage's work
    assert result.stats.generated_tokens == 50 == sum(s["tokens"] for s in run.report)
    assert (result.stats.nodes, result.stats.engine_calls, result.stats.wall_s) == (2, 2, 1.0)


async def test_a_spent_budget_stops_with_the_most_confident_answer_so_far():
    run_stage, calls = scripted({"greedy": 0.6, "beam": 0.5, "mcts": 1.0}, TOKENS)
    run = await escalate(PLAN, run_stage, 0.8, 45)
    assert [c[:2] for c in calls] == [("greedy", 45), ("beam", 35)]
    assert run.report[-1]["why"] == "confidence 0.50 < target 0.8; budget spent (50 of 45 tokens)"
    assert run.answered.strategy == "greedy" and run.last.strategy == "beam"
    assert [s["answered"] for s in run.report] == [True, False]
    assert run.result().answers[0].text == "greedy"
    assert run.result().stats.generated_tokens == 50


async def test_when_no_stage_reaches_the_target_the_later_of_equals_answers():
    run_stage, _ = scripted({"greedy": 0.3, "beam": 0.5, "mcts": 0.5}, TOKENS)
    run = await escalate(PLAN, run_stage, 0.8, 1000)
    assert run.report[-1]["why"] == "confidence 0.50 < target 0.8; no stage left"
    assert run.answered.strategy == "mcts"


async def test_past_the_deadline_no_stage_starts():
    run_stage, calls = scripted({"greedy": 0.3, "beam": 0.5, "mcts": 0.5}, TOKENS)
    run = await escalate(PLAN, run_stage, 0.8, 1000, deadline=0.0)
    assert len(calls) == 1 and run.report[0]["why"].endswith("time spent")


# ---- through the API ------------------------------------------------------------------------

# A single pass is right a fifth of the time; an answer `logic` scored 1 nine times in ten.
DOUBTED_GREEDY = family_json("demo", [], ["agreement"], [0.5], [1.0], [0.5], [0.0], -1.386)
TRUSTED_LOGIC = family_json("demo", ["logic"], ["verifier"], [0.5], [0.5], [0.0], [2.2], 0.0)
TRUSTED_GREEDY = family_json("demo", [], ["agreement"], [0.5], [1.0], [0.5], [0.0], 2.944)


def settings(tmp_path, *families, **kw) -> Settings:
    families = families or (DOUBTED_GREEDY, TRUSTED_LOGIC)
    return Settings(**{"max_n": 4, "max_logprobs": 2, "search_verifiers": {"logic": 1.0},
                       "difficulty_estimators": [], "max_beam_width": 4,
                       "confidence_file": write_table(tmp_path, list(families)), **kw})


def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT)


def escalating(**reasoning) -> dict:
    return chat(reasoning={"strategy": "auto", "escalate": True, **reasoning})


async def test_a_confident_greedy_answer_is_returned_after_one_stage(tmp_path):
    r = await served(settings(tmp_path, TRUSTED_GREEDY, TRUSTED_LOGIC), engine(), escalating())
    body = r.json()
    info = body["reasoning"]
    assert [s["strategy"] for s in info["stages"]] == ["greedy"]
    assert info["stages"][0]["why"] == "target reached: confidence 0.95 >= 0.8"
    assert info["strategy"] == "greedy" and r.headers["x-reasoning-strategy"] == "greedy"
    assert body["choices"][0]["message"]["content"].endswith("Answer: 15")  # greedy's slip
    # judged as a single pass is: no verifier scored it
    assert info["confidence"]["calibrated"] is True
    assert info["confidence"]["signals"]["verifier"] is None
    assert info["confidence"]["value"] == info["stages"][0]["confidence"]
    assert body["usage"]["completion_tokens"] == info["stages"][0]["tokens"] > 0


async def test_a_doubted_greedy_answer_escalates_to_beam(tmp_path):
    r = await served(settings(tmp_path), engine(), escalating())
    body = r.json()
    info = body["reasoning"]
    assert [s["strategy"] for s in info["stages"]] == ["greedy", "beam"]
    assert info["stages"][0]["why"] == "confidence 0.20 < target 0.8; escalate to beam"
    assert info["stages"][1]["why"].startswith("target reached")
    assert info["strategy"] == "beam" and r.headers["x-reasoning-strategy"] == "beam"
    assert body["choices"][0]["message"]["content"] == "3*4=12\n2+12=14\nAnswer: 14"
    assert info["confidence"]["value"] == info["stages"][1]["confidence"] >= 0.8
    # usage counts every stage
    assert body["usage"]["completion_tokens"] == sum(s["tokens"] for s in info["stages"])
    assert r.metrics['deliberate_confidence_count{strategy="beam"}'] == 1


async def test_the_request_target_wins_over_the_server_default(tmp_path):
    r = await served(settings(tmp_path, target_confidence=0.1), engine(), escalating())
    assert [s["strategy"] for s in r.json()["reasoning"]["stages"]] == ["greedy"]
    r = await served(settings(tmp_path, target_confidence=0.1), engine(),
                     escalating(target_confidence=0.99))
    stages = r.json()["reasoning"]["stages"]
    assert [s["strategy"] for s in stages] == ["greedy", "beam", "mcts"]
    assert stages[-1]["why"].endswith("no stage left")


async def test_a_spent_budget_stops_escalating(tmp_path):
    r = await served(settings(tmp_path), engine(), escalating(budget_tokens=20))
    info = r.json()["reasoning"]
    assert [s["strategy"] for s in info["stages"]] == ["greedy"]
    assert "budget spent" in info["stages"][0]["why"]


async def test_the_server_setting_escalates_and_a_request_may_decline(tmp_path):
    s = settings(tmp_path, auto_escalate=True, default_strategy="auto")
    r = await served(s, engine(), chat())
    assert [st["strategy"] for st in r.json()["reasoning"]["stages"]] == ["greedy", "beam"]
    r = await served(s, engine(), chat(reasoning={"escalate": False}))
    assert "stages" not in r.json()["reasoning"]


async def test_the_route_picks_the_first_stage_and_the_stages_are_a_setting(tmp_path):
    r = await served(settings(tmp_path), engine(),
                     escalating(target_confidence=1.0) | {"reasoning_effort": "medium"})
    stages = r.json()["reasoning"]["stages"]
    assert [s["strategy"] for s in stages] == ["beam", "mcts"]
    assert stages[0]["why"].startswith("reasoning_effort medium routes to beam; ")
    r = await served(settings(tmp_path, escalation_stages="greedy,best_of_n"), engine(),
                     escalating(target_confidence=1.0))
    assert [s["strategy"] for s in r.json()["reasoning"]["stages"]] == ["greedy", "best_of_n"]


async def test_several_answers_start_past_the_greedy_stage(tmp_path):
    r = await served(settings(tmp_path), engine(), escalating() | {"n": 2})
    assert r.status_code == 200, r.text
    assert r.json()["reasoning"]["stages"][0]["strategy"] == "beam"
    assert len(r.json()["choices"]) == 2


async def test_a_stream_closes_with_the_stages(tmp_path):
    r = await served(settings(tmp_path), engine(), escalating() | {"stream": True})
    events = parse_events(r.text)
    assert [s["strategy"] for s in events[-1]["reasoning"]["stages"]] == ["greedy", "beam"]
    content = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert content.endswith("Answer: 14")


async def test_a_single_pass_feature_answers_in_one_pass_without_stages(tmp_path):
    r = await served(settings(tmp_path), engine(), escalating() | {"logprobs": True})
    assert r.status_code == 200, r.text
    assert "stages" not in r.json()["reasoning"]


@pytest.mark.parametrize("reasoning", [{"strategy": "beam", "escalate": True},
                                       {"strategy": "greedy", "escalate": False},
                                       {"strategy": "auto", "escalate": "maybe"}])
async def test_escalate_outside_auto_or_not_a_bool_is_a_400_naming_it(tmp_path, reasoning):
    r = await served(settings(tmp_path), engine(), chat(reasoning=reasoning))
    assert r.status_code == 400
    error = r.json()["error"]
    assert "escalate" in error["param"] and "escalate" in error["message"]


def test_the_stages_setting_is_validated():
    for bad in ("greedy,auto", "", "beam,beam", "greedy,nope"):
        with pytest.raises(ValueError):
            Settings(escalation_stages=bad)
    assert Settings(escalation_stages="greedy, deepconf").escalation_stages == \
        ["greedy", "deepconf"]


@pytest.mark.parametrize(("routed", "plan", "why"), [
    ("greedy", ("greedy", "beam", "mcts"), "difficulty 0.70 routes to greedy"),
    ("beam", ("beam", "mcts"), "difficulty 0.70 routes to beam"),
    ("mcts", ("mcts",), "difficulty 0.70 routes to mcts"),
    ("tot", ("greedy", "beam", "mcts"),
     "difficulty 0.70 routes to tot, not a stage here: greedy first")])
def test_the_difficulty_route_picks_the_first_stage(routed, plan, why):
    service = ReasoningService(Settings(confidence_file=""), None, None, None, {})
    decision = Decision(strategy=routed, difficulty=0.7,
                        options=ReasoningOptions(strategy="auto", escalate=True))
    service._plan(decision, ChatCompletionRequest.model_validate(chat()))
    assert (decision.plan, decision.strategy, decision.plan_why) == (plan, plan[0], why)


async def test_a_request_names_its_own_stages(tmp_path):
    r = await served(settings(tmp_path), engine(),
                     chat(reasoning={"strategy": "auto", "target_confidence": 1.0,
                                     "escalation_stages": ["greedy", "best_of_n"]}))
    assert r.status_code == 200, r.text
    assert [s["strategy"] for s in r.json()["reasoning"]["stages"]] == ["greedy", "best_of_n"]


async def test_a_deepconf_stage_takes_deepconfs_options(tmp_path):
    r = await served(settings(tmp_path, max_candidates=8), engine(),
                     escalating(target_confidence=1.0, escalation_stages=["greedy", "deepconf"],
                                n_candidates=4, warmup=2, consensus=0.9))
    assert r.status_code == 200, r.text
    stages = r.json()["reasoning"]["stages"]
    assert [s["strategy"] for s in stages] == ["greedy", "deepconf"]


@pytest.mark.parametrize(("reasoning", "says"), [
    ({"strategy": "beam", "escalation_stages": ["greedy", "beam"]}, "applies to the auto"),
    ({"strategy": "auto", "escalate": False, "escalation_stages": ["greedy"]}, "drop one"),
    ({"strategy": "auto", "escalation_stages": ["greedy", "greedy"]}, "distinct"),
    ({"strategy": "auto", "escalation_stages": ["greedy", "auto"]}, "escalation_stages"),
    ({"strategy": "auto", "escalation_stages": []}, "escalation_stages"),
    ({"strategy": "auto", "consensus": 0.9}, "deepconf")])
async def test_bad_request_stages_are_400s_that_say_what_to_change(tmp_path, reasoning, says):
    r = await served(settings(tmp_path), engine(), chat(reasoning=reasoning))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert says in error["message"] or says in (error["param"] or ""), error
