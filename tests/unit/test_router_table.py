"""Fitted router thresholds: the fit (training.components.router_fit), the table (search.router) and the
server choosing them per verifier set (server/reasoning/router_table.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from search.router import RouterTable, Thresholds
from server.app import create_app
from server.reasoning.router_table import load_router_table
from server.settings import Settings
from tests.search_fakes import StepEngine
from training.components.router_fit import CalibrationProblem, evaluate, fit_thresholds, routed

# ---- the fit ---------------------------------------------------------------------------------


def problem(d: float, right: str, tokens=(10, 60, 50)) -> CalibrationProblem:
    """`right`: the strategies that answer it ("gbm" = all three)."""
    names = {"g": "greedy", "b": "beam", "m": "mcts"}
    return CalibrationProblem(d, {s: k in right for k, s in names.items()},
                              dict(zip(names.values(), tokens)))


def test_the_fit_spends_search_only_where_it_pays():
    # easy problems greedy solves; hard ones (d >= 0.8) only mcts solves; beam never helps
    problems = [problem(0.1 * i, "gbm") for i in range(5)] + \
        [problem(0.85, "m"), problem(0.9, "m"), problem(0.95, "")]
    fit = fit_thresholds(problems, tolerance=0.0)
    assert fit.accuracy == pytest.approx(7 / 8)
    # greedy up to 0.4, mcts from 0.85, nothing routed to beam
    assert 0.4 < fit.low <= fit.high <= 0.85
    assert [routed(p, fit.low, fit.high) for p in problems] == ["greedy"] * 5 + ["mcts"] * 3
    assert fit.tokens == pytest.approx((5 * 10 + 3 * 50) / 8)
    assert evaluate(problems, 0.0, 0.0).tokens > fit.tokens  # always-mcts costs more


def test_the_tolerance_trades_accuracy_for_tokens():
    # beam gains one problem out of 20 at six times greedy's tokens
    problems = [problem(0.5, "gb" if i else "b") for i in range(20)]
    assert fit_thresholds(problems, tolerance=0.0).accuracy == 1.0
    cheap = fit_thresholds(problems, tolerance=0.05)
    assert cheap.accuracy == 0.95 and cheap.tokens == 10  # all greedy


def test_the_fit_against_a_reference_accuracy_may_find_nothing_good_enough():
    problems = [problem(0.1, "gbm"), problem(0.9, "m")]
    fit = fit_thresholds(problems, tolerance=0.0, reference=1.0)
    assert fit is not None and fit.accuracy == 1.0  # greedy on the easy one, mcts on the hard
    assert fit_thresholds([problem(0.9, "g")], tolerance=0.03, reference=1.0).accuracy == 1.0
    assert fit_thresholds([problem(0.9, "")], tolerance=0.03, reference=1.0) is None


def test_the_fit_needs_every_strategy_measured():
    with pytest.raises(ValueError, match="mcts"):
        fit_thresholds([CalibrationProblem(0.5, {"greedy": True, "beam": True},
                                           {"greedy": 1, "beam": 2})])
    with pytest.raises(ValueError, match="at least one"):
        fit_thresholds([])

# ---- the table -------------------------------------------------------------------------------


TABLE = {"model": "models/demo/base", "estimator": "probe",
         "routes": [{"verifiers": ["logic"], "low": 0.0, "high": 1.0}]}


def test_the_table_answers_for_its_verifier_set_and_estimator_only():
    table = RouterTable.from_json(TABLE)
    assert table.thresholds_for(["logic"], "probe") == Thresholds(0.0, 1.0)
    assert table.thresholds_for(["logic", "prm"], "probe") is None
    assert table.thresholds_for(["logic"], "learned") is None  # another difficulty scale


@pytest.mark.parametrize("broken", [{"routes": []}, {"estimator": "x", "routes": [{"low": 0}]},
                                    {"estimator": "x", "routes": [{"verifiers": ["a"],
                                                                   "low": 0.9, "high": 0.1}]}])
def test_a_broken_table_is_a_clear_error(broken):
    with pytest.raises(ValueError, match="router"):
        RouterTable.from_json(broken)


def write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "router.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_the_server_takes_the_table_only_when_it_fits(tmp_path):
    path = write(tmp_path, TABLE)
    assert load_router_table(Settings(router_file=path)) is not None
    # fitted for another model, overridden by explicit thresholds, or switched off
    assert load_router_table(Settings(router_file=path, model="other/model")) is None
    assert load_router_table(Settings(router_file=path, router_low=0.2)) is None
    assert load_router_table(Settings(router_file="")) is None
    assert load_router_table(Settings(router_file=str(tmp_path / "absent.json"))) is None
    (tmp_path / "router.json").write_text("{not json")
    with pytest.raises(ValueError, match="--router-file ''"):
        load_router_table(Settings(router_file=path))


def test_the_committed_demo_table_parses_and_names_the_demo_model():
    settings = Settings()
    table = load_router_table(settings)
    assert table is not None and table.estimator == "learned"
    # the server's own default search verifiers have fitted thresholds
    assert table.thresholds_for(settings.search_verifiers, "learned") is not None

# ---- routing through the API -----------------------------------------------------------------


PROMPT = "Compute: 2+3*4\n"
AGREEING = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}


async def answer(settings: Settings, **reasoning) -> httpx.Response:
    engine = StepEngine(prompt=PROMPT, script=AGREEING)  # probe samples agree: difficulty 0
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test") as client:
        return await client.post("/v1/chat/completions", json={
            "model": "demo", "messages": [{"role": "user", "content": PROMPT.strip()}],
            "max_tokens": 64, "reasoning": {"strategy": "auto", **reasoning}})


async def strategy_for(settings: Settings, **reasoning) -> str:
    r = await answer(settings, **reasoning)
    assert r.status_code == 200, r.text
    if reasoning.get("strategy", "auto") == "auto":
        assert r.json()["reasoning"]["difficulty"] == 0.0
    return r.headers["x-reasoning-strategy"]


async def test_auto_routes_by_the_fitted_thresholds_of_the_requests_verifiers(tmp_path):
    settings = Settings(router_file=write(tmp_path, TABLE), search_verifiers={"logic": 1.0},
                        difficulty_estimators=["probe"],
                        difficulty_config={"probe": {"samples": 2}})
    # fitted for {logic}: low 0, so even difficulty 0 gets a beam
    assert await strategy_for(settings) == "beam"
    assert await strategy_for(settings, verifiers={"logic": 1, "syntax": 0}) == "beam"
    # a set nobody calibrated, or explicit thresholds: the defaults (difficulty 0 is greedy)
    assert await strategy_for(settings, verifiers={"logic": 1, "syntax": 1}) == "greedy"
    explicit = settings.model_copy(update={"router_low": 0.3})
    assert await strategy_for(explicit) == "greedy"


async def test_the_mcts_auto_routes_to_runs_as_the_table_says_and_explicit_mcts_as_asked(tmp_path):
    route = {"verifiers": ["logic"], "low": 0.0, "high": 0.0,
             "mcts": {"accept_greedy": 0.5, "budget_tokens": 1000}}
    settings = Settings(router_file=write(tmp_path, {**TABLE, "routes": [route]}),
                        search_verifiers={"logic": 1.0}, difficulty_estimators=["probe"],
                        difficulty_config={"probe": {"samples": 2}})
    assert RouterTable.from_json({**TABLE, "routes": [route]}).thresholds_for(
        ["logic"], "probe") == Thresholds(0.0, 0.0, accept_greedy=0.5, budget_tokens=1000)
    # auto -> mcts, greedy first: logic accepts the right greedy answer, nothing is searched
    routed = (await answer(settings)).json()["reasoning"]
    assert routed["strategy"] == "mcts" and routed["stopped_by"] == "accept_greedy"
    assert routed["engine_calls"] == 1
    # an explicit mcts searches as asked (no table settings), unless it asks for greedy first
    explicit = (await answer(settings, strategy="mcts")).json()["reasoning"]
    assert explicit["stopped_by"] != "accept_greedy" and explicit["engine_calls"] > 1
    asked = (await answer(settings, strategy="mcts", accept_greedy=0.5)).json()["reasoning"]
    assert asked["stopped_by"] == "accept_greedy"
    r = await answer(settings, strategy="beam", accept_greedy=0.5)
    assert r.status_code == 400 and r.json()["error"]["param"] == "reasoning.accept_greedy"


def test_a_table_route_with_unknown_mcts_settings_is_refused():
    route = {"verifiers": ["logic"], "low": 0.0, "high": 0.0, "mcts": {"simulations": 4}}
    with pytest.raises(ValueError, match="router"):
        RouterTable.from_json({**TABLE, "routes": [route]})
