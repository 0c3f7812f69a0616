"""Every answer says how sure it is (`reasoning.confidence`), and may be withheld below the
request's `abstain_below`; the calibration file the server reads (search/calibration.py,
server/reasoning/confidence_table.py). Through the HTTP API on fake engines (no vLLM)."""

from __future__ import annotations

import json
import logging
import math

import httpx
import pytest

from search.calibration import CalibrationTable, family_json, uncalibrated
from server.app import create_app
from server.openai.protocol import ChatCompletionRequest
from server.reasoning.confidence_table import load_confidence_table
from server.reasoning.service import request_seed
from server.settings import Settings
from tests.fakes import FakeEngine
from tests.search_fakes import StepEngine
from tests.sse import parse_events
from tests.unit.test_reasoning_api import PROMPT, SCRIPT, chat

MESSAGE = "Not sure; ask a person."
# the fake engine's every token: itself at -0.25, "?" at -1.5, "!" at -2.5
TOKEN_CONFIDENCE = (0.25 + 1.5 + 2.5) / 3


def greedy_settings(**kw) -> Settings:
    return Settings(**{"max_n": 4, "max_logprobs": 2, "default_strategy": "greedy",
                       "confidence_file": "", "abstain_message": MESSAGE, **kw})


async def served(settings: Settings, engine, body: dict, path: str = "/v1/chat/completions"
                 ) -> httpx.Response:
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = (await client.get("/metrics")).text
            response = await client.post(path, json=body)
            after = (await client.get("/metrics")).text
            # what this request added to each series (the registry is the process's)
            response.metrics = {  # type: ignore[attr-defined]
                name: value - _series(before).get(name, 0.0)
                for name, value in _series(after).items()}
            return response


def _series(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def user(text: str = "hi", **extra) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": text}], **extra}


# ---- signals on every answer ----------------------------------------------------------------


async def test_a_greedy_answer_says_how_sure_it_is_without_logprobs_it_did_not_ask_for():
    engine = FakeEngine()
    r = await served(greedy_settings(), engine, user())
    body = r.json()
    confidence = body["reasoning"]["confidence"]
    assert confidence["calibrated"] is False
    signals = confidence["signals"]
    assert signals["tokens"] == len(engine.reply)
    assert signals["mean"] == signals["tail"] == pytest.approx(TOKEN_CONFIDENCE, abs=1e-4)
    assert signals["agreement"] is None and signals["verifier"] is None
    assert confidence["value"] == pytest.approx(uncalibrated(signals), abs=1e-4)
    assert 0 < confidence["value"] < 1
    # the engine read the top-5; the client asked for no logprobs and gets none
    assert engine.requests[0][2].logprobs == 5
    assert body["choices"][0]["logprobs"] is None
    assert "abstained" not in body["reasoning"]
    assert r.metrics['deliberate_confidence_count{strategy="greedy"}'] == 1


async def test_a_client_that_asks_fewer_logprobs_gets_its_own_k():
    engine = FakeEngine()
    r = await served(greedy_settings(), engine, user(logprobs=True, top_logprobs=1))
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert engine.requests[0][2].logprobs == 5
    assert all(len(p["top_logprobs"]) == 1 for p in content)
    assert r.json()["reasoning"]["confidence"]["signals"]["mean"] == pytest.approx(
        TOKEN_CONFIDENCE, abs=1e-4)  # read from the engine's top-k, not the client's


async def test_completions_and_streams_carry_the_confidence_in_their_closing_chunk():
    body = {"model": "demo", "prompt": "hi", "max_tokens": 8}
    r = await served(greedy_settings(), FakeEngine(), body, "/v1/completions")
    assert r.json()["reasoning"]["confidence"]["signals"]["tokens"] == 8
    assert r.json()["choices"][0]["logprobs"] is None
    for path, request in (("/v1/completions", {**body, "stream": True}),
                          ("/v1/chat/completions", user(stream=True))):
        r = await served(greedy_settings(), FakeEngine(), request, path)
        events = parse_events(r.text)
        assert [i for i, e in enumerate(events) if e.get("reasoning")] == [len(events) - 1]
        assert 0 < events[-1]["reasoning"]["confidence"]["value"] < 1
        assert all(c.get("logprobs") is None for e in events for c in e["choices"])


async def test_a_search_answer_reads_its_path_agreement_and_verifiers():
    settings = Settings(max_n=4, max_logprobs=2, search_verifiers={"logic": 1.0},
                        confidence_file="")
    r = await served(settings, StepEngine(prompt=PROMPT, script=SCRIPT),
                     chat(reasoning={"strategy": "beam", "beam_width": 2}))
    info = r.json()["reasoning"]
    signals = info["confidence"]["signals"]
    assert signals["verifier"] == pytest.approx(info["score"], abs=1e-4)
    assert set(signals) >= {"agreement", "verifier"}
    assert r.metrics['deliberate_confidence_count{strategy="beam"}'] == 1


# ---- abstaining -----------------------------------------------------------------------------


async def test_below_abstain_below_the_answer_is_withheld_and_finish_reason_kept():
    plain = await served(greedy_settings(), FakeEngine(), user())
    r = await served(greedy_settings(), FakeEngine(),
                     user(reasoning={"strategy": "greedy", "abstain_below": 1.0}))
    body = r.json()
    assert body["choices"][0]["message"]["content"] == MESSAGE
    assert body["choices"][0]["finish_reason"] == plain.json()["choices"][0]["finish_reason"]
    assert body["reasoning"]["abstained"] is True
    assert body["reasoning"]["confidence"] == plain.json()["reasoning"]["confidence"]
    assert r.metrics['deliberate_abstentions_total{strategy="greedy"}'] == 1
    kept = await served(greedy_settings(), FakeEngine(),
                        user(reasoning={"strategy": "greedy", "abstain_below": 0.0}))
    assert kept.json()["choices"][0]["message"]["content"] == FakeEngine().reply
    assert kept.json()["reasoning"]["abstained"] is False


async def test_a_streamed_single_pass_that_may_abstain_sends_nothing_of_the_withheld_answer():
    engine = FakeEngine()
    r = await served(greedy_settings(), engine,
                     user(stream=True, reasoning={"strategy": "greedy", "abstain_below": 1.0}))
    events = parse_events(r.text)
    content = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert content == MESSAGE and engine.reply not in r.text
    assert [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]] \
        == ["stop"]
    assert events[-1]["reasoning"]["abstained"] is True
    kept = await served(greedy_settings(), FakeEngine(),
                        user(stream=True, reasoning={"strategy": "greedy", "abstain_below": 0}))
    assert "".join(c["delta"].get("content") or "" for e in parse_events(kept.text)
                   for c in e["choices"]) == engine.reply


async def test_a_search_abstains_too():
    settings = Settings(max_n=4, max_logprobs=2, search_verifiers={"logic": 1.0},
                        confidence_file="", abstain_message=MESSAGE)
    r = await served(settings, StepEngine(prompt=PROMPT, script=SCRIPT),
                     chat(reasoning={"strategy": "beam", "abstain_below": 1.0}))
    assert r.json()["choices"][0]["message"]["content"] == MESSAGE
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert r.json()["reasoning"]["abstained"] is True


def test_asking_to_abstain_or_for_a_target_keeps_the_seed_of_the_answer_it_judges():
    # a temperature-0 request routed to a search draws its seed from its content: the
    # confidence options must not draw another answer than the one they judge
    def seed(**options) -> int:
        request = ChatCompletionRequest.model_validate(user(
            temperature=0, reasoning={"strategy": "beam", **options}))
        return request_seed(request, [1, 2, 3])

    assert seed() == seed(abstain_below=0.9) == seed(target_confidence=0.5)
    assert seed() != seed(beam_width=2)


@pytest.mark.parametrize(("reasoning", "param"), [
    ({"abstain_below": 1.5}, "abstain_below"), ({"abstain_below": -0.1}, "abstain_below"),
    ({"target_confidence": 2}, "target_confidence"),
    ({"target_confidence": -1}, "target_confidence"),
    ({"confidence_threshold": 0.5}, "confidence_threshold"),
])
async def test_bad_confidence_options_are_400s_naming_them(reasoning, param):
    r = await served(greedy_settings(), FakeEngine(), user(reasoning=reasoning))
    assert r.status_code == 400
    error = r.json()["error"]
    assert param in error["param"] and param in error["message"]


def test_confidence_settings_are_validated():
    for bad in ({"confidence_top_k": 21}, {"confidence_window": 0},
                {"target_confidence": 1.5}):
        with pytest.raises(ValueError):
            Settings(**bad)


# ---- the calibration ------------------------------------------------------------------------


def family(model="demo", verifiers=(), bias=0.0) -> dict:
    return family_json(model, verifiers, ["mean", "verifier"], [2.0, 0.5], [1.0, 0.25],
                       [2.0, 0.5], [1.5, 2.0], bias)


def write_table(tmp_path, families, model="models/demo/base", text=None):
    path = tmp_path / "confidence.json"
    path.write_text(text if text is not None else json.dumps(
        {"model": model, "families": families}))
    return str(path)


def test_the_most_specific_family_wins_and_none_matching_is_uncalibrated():
    table = CalibrationTable.from_json({"families": [
        family(None, None, 0.1), family(None, ["prm"], 0.2), family("demo", ["prm"], 0.3),
        family("demo", None, 0.4)]})
    assert table.family_for("demo", ["prm"]).intercept == 0.3
    assert table.family_for("other", ["prm"]).intercept == 0.2
    assert table.family_for("demo", []).intercept == 0.4
    assert table.family_for("other", ["logic"]).intercept == 0.1
    assert CalibrationTable.from_json({"families": [family("demo", [])]}).family_for(
        "demo", ["prm"]) is None


def test_a_strategys_own_family_wins_over_its_verifiers_one():
    own = {**family("demo", ["prm"], 0.5), "strategy": "best_of_n"}
    table = CalibrationTable.from_json({"families": [
        family(None, None, 0.1), family("demo", ["prm"], 0.3), own]})
    assert table.family_for("demo", ["prm"], "best_of_n").intercept == 0.5
    assert table.family_for("demo", ["prm"], "beam").intercept == 0.3
    assert table.family_for("demo", ["prm"]).intercept == 0.3  # no strategy said
    assert table.family_for("demo", ["logic"], "best_of_n").intercept == 0.1  # other verifiers


async def test_a_search_is_calibrated_by_its_strategys_family(tmp_path):
    shared, own = family("demo", ["logic"], -3.0), {**family("demo", ["logic"], 3.0),
                                                    "strategy": "best_of_n"}
    settings = Settings(max_n=4, max_logprobs=2, search_verifiers={"logic": 1.0},
                        confidence_file=write_table(tmp_path, [shared, own]))
    value = {}
    for strategy, options in (("beam", {"beam_width": 2}), ("best_of_n", {"n_candidates": 2})):
        r = await served(settings, StepEngine(prompt=PROMPT, script=SCRIPT),
                         chat(reasoning={"strategy": strategy, **options}))
        confidence = r.json()["reasoning"]["confidence"]
        table = CalibrationTable.from_json({"families": [shared, own]})
        expected = table.family_for("demo", ["logic"], strategy).probability(
            confidence["signals"])
        assert confidence["calibrated"] and confidence["value"] == pytest.approx(expected,
                                                                                 abs=1e-4)
        value[strategy] = confidence["value"]
    assert value["best_of_n"] > value["beam"]  # intercepts 3 and -3


def test_a_family_is_a_logistic_regression_of_standardized_signals():
    f = CalibrationTable.from_json({"families": [family()]}).families[0]
    z = 1.5 * (3.0 - 2.0) / 1.0 + 2.0 * (0.75 - 0.5) / 0.25
    assert f.probability({"mean": 3.0, "verifier": 0.75}) == pytest.approx(1 / (1 + math.exp(-z)))
    # a missing signal reads as its fill
    assert f.probability({"mean": 3.0}) == pytest.approx(1 / (1 + math.exp(-1.5)))


async def test_a_calibration_for_the_served_model_is_used(tmp_path):
    settings = greedy_settings(confidence_file=write_table(tmp_path, [family("demo", [])]))
    r = await served(settings, FakeEngine(), user())
    confidence = r.json()["reasoning"]["confidence"]
    expected = CalibrationTable.from_json({"families": [family()]}).families[0].probability(
        confidence["signals"])
    assert confidence["calibrated"] is True
    assert confidence["value"] == pytest.approx(expected, abs=1e-4)


def test_a_calibration_fitted_for_another_model_is_ignored_and_logged(tmp_path, caplog):
    path = write_table(tmp_path, [family()], model="models/other")
    with caplog.at_level(logging.WARNING):
        assert load_confidence_table(greedy_settings(confidence_file=path)) is None
    assert "models/other" in caplog.text and "ignored" in caplog.text
    assert load_confidence_table(greedy_settings(confidence_file=str(tmp_path / "none"))) \
        is None


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "Expecting"),
    (json.dumps({"model": "models/demo/base"}), "'families'"),
    (json.dumps({"families": [{"features": ["mean"]}]}), "families[0] needs"),
    (json.dumps({"families": [{**family(), "features": ["mean", "loudness"]}]}), "loudness"),
    (json.dumps({"families": [{**family(), "coef": [1.0]}]}), "'coef' has 1 values"),
    (json.dumps({"families": [{**family(), "scale": [0.0, 1.0]}]}), "'scale' must be > 0"),
    (json.dumps({"families": [{**family(), "isotonic": {"x": [0.1, 0.5], "y": [0.9, 0.2]}}]}),
     "y non-decreasing"),
    (json.dumps({"families": [{**family(), "isotonic": {"x": [0.5, 0.5], "y": [0.1, 0.2]}}]}),
     "x increasing"),
    (json.dumps({"families": [{**family(), "isotonic": {"x": [0.1], "y": [1.5]}}]}),
     "'isotonic' needs"),
    (json.dumps({"families": [{**family(), "isotonic": [0.1, 0.2]}]}), "'isotonic' needs"),
])
async def test_a_malformed_calibration_stops_the_start_saying_how_to_fix_it(tmp_path, text,
                                                                            says):
    settings = greedy_settings(confidence_file=write_table(tmp_path, [], text=text))
    with pytest.raises(ValueError, match="calibrate_confidence") as error:
        load_confidence_table(settings)
    assert says in str(error.value) and "--confidence-file ''" in str(error.value)
    app = create_app(settings, FakeEngine())
    with pytest.raises(ValueError, match="not a confidence calibration"):
        async with app.router.lifespan_context(app):
            pass


def test_options_added_since_leave_an_unchanged_requests_seed_as_it_was():
    # a temperature-0 request's seed is drawn from its content; options added later (deepconf's,
    # escalate, the confidence ones), left unset, must not move it: the same request got the same
    # answer before they existed (value computed with main at abd8bf9)
    request = ChatCompletionRequest.model_validate({
        "model": "demo", "messages": [{"role": "user", "content": "Compute: 2+3"}],
        "temperature": 0, "reasoning": {"strategy": "beam", "beam_width": 2}})
    assert request_seed(request, [1, 2, 3]) == 7992512126686965407
