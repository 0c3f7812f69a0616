"""POST /v1/verify with the built-in verifiers (no engine needed for them), and scripted
plugins: faults, admission."""

import asyncio
import time

import httpx
import pytest

from engine.protocol import ContextExceeded, InvalidEngineRequest
from server.admission import SINGLE
from server.app import create_app
from server.settings import Settings
from server.verify.router import get_service
from server.verify.service import VerifyService
from verifiers.registry import VerifierRegistry

GOOD = "17*3=51\n29*2=58\n48+51=99\n99-58=41\n41+11=52\nAnswer: 52"
BAD = "17*3=51\n29*2=56\n48+51=99\n99-56=43\n43+11=54\nAnswer: 54"  # one wrong product
PROBLEM = "Compute: 48+17*3-29*2+11"


async def verify(client, **body):
    return await client.post("/v1/verify", json={"prompt": PROBLEM, **body})


async def test_correct_solution_outscores_corrupted_one_step_by_step(client):
    good = (await verify(client, completion=GOOD)).json()
    bad = (await verify(client, completion=BAD)).json()
    assert good["object"] == "verification" and good["score"] == 1.0
    assert [s["text"] for s in good["steps"]] == GOOD.split("\n")
    assert set(good["steps"][0]["scores"]) == {"syntax", "logic"}
    assert bad["score"] == 0.0 and good["score"] > bad["score"]
    assert [s["scores"]["logic"] for s in bad["steps"]] == [1, 0, 1, 1, 1, 1]
    assert bad["verifier_scores"] == {"syntax": 1.0, "logic": 0.0}


async def test_aggregations_and_weights(client):
    r = (await verify(client, completion=BAD, aggregation="mean",
                      verifiers={"logic": 1.0, "syntax": 0.5})).json()
    assert r["score"] == pytest.approx(5 / 6) and r["aggregation"] == "mean"
    unfinished = (await verify(client, completion="17*3=51\n29*2=58", aggregation="last")).json()
    assert unfinished["steps"][-1]["scores"]["syntax"] == 0.0  # a final path needs its Answer line


async def test_factual_uses_the_evidence_in_the_request(client):
    r = (await verify(client, prompt="Where is the Louvre?", completion="The Louvre is in Paris",
                      verifiers={"factual": 1}, evidence=["the louvre: in Paris"])).json()
    assert r["score"] == 1.0
    r = (await verify(client, prompt="Where is the Louvre?", completion="The Louvre is in Rome",
                      verifiers={"factual": 1}, evidence=["the louvre: in Paris"])).json()
    assert r["score"] == 0.0


@pytest.mark.parametrize("body, param, words", [
    ({"completion": GOOD, "verifiers": {"nope": 1}}, "verifiers", "unknown verifier"),
    ({"completion": GOOD, "verifiers": {"logic": -1}}, "verifiers", "must be >= 0"),
    ({"completion": GOOD, "verifiers": {}}, "verifiers", "name at least one"),
    ({"completion": "\n \n"}, "completion", "no steps"),
    ({"completion": ""}, "completion", ""),
    ({"completion": GOOD, "aggregation": "median"}, "aggregation", ""),
])
async def test_bad_requests_name_the_field(client, body, param, words):
    r = await verify(client, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]


class Raising:
    name = "raising"

    async def score(self, items, context):
        raise RuntimeError("plugin bug")


class Fixed:
    name = "fixed"

    async def score(self, items, context):
        return [0.5] * len(items)


class Refused:
    """A reward model whose engine refuses the input, as vLLM refuses a prompt past the
    model's context."""
    name = "refused"

    async def score(self, items, context):
        raise ContextExceeded("This model's maximum context length is 512 tokens")


class Unloadable:
    """A reward model whose adapter the engine cannot load: the server's problem, not the
    caller's, so the request degrades as for any failing plugin."""
    name = "unloadable"

    async def score(self, items, context):
        raise InvalidEngineRequest("the engine could not load adapter 'prm'")


async def verify_with(app, client, plugin, **body):
    """/v1/verify of "a\nb" under `plugin` and `Fixed` (0.5 a step), both weighted 1."""
    registry = VerifierRegistry({plugin.name: plugin, "fixed": Fixed()}, skipped={})
    admission = app.state.verify_service.admission
    app.dependency_overrides[get_service] = lambda: VerifyService(registry, {}, 1.0, admission,
                                                                  app.state.engine.encode)
    try:
        return await verify(client, completion="a\nb", verifiers={plugin.name: 1, "fixed": 1},
                            **body)
    finally:
        app.dependency_overrides.clear()


async def test_a_raising_plugin_degrades_only_its_own_scores(app, client):
    r = await verify_with(app, client, Raising(), aggregation="product")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["score"] == pytest.approx(0.25) and "plugin bug" in body["verifier_errors"]["raising"]
    assert body["verifier_scores"] == {"fixed": 0.25}


async def test_an_input_the_engine_refuses_is_a_400_not_a_score_without_that_verifier(
        app, client):
    r = await verify_with(app, client, Refused())
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "completion"
    assert "'refused'" in error["message"] and "maximum context length" in error["message"]


async def test_a_verifier_the_engine_cannot_serve_still_degrades_to_its_error(app, client):
    r = await verify_with(app, client, Unloadable())
    assert r.status_code == 200, r.text
    assert "could not load" in r.json()["verifier_errors"]["unloadable"]


async def test_weighted_sum_combines_verifiers_additively(client):
    weights = {"syntax": 0.3, "logic": 0.7}
    r = (await verify(client, completion=BAD, verifiers=weights, combine="weighted_sum",
                      aggregation="mean")).json()
    assert r["combine"] == "weighted_sum"
    # step 2 (29*2=56) is well formed (1) and false (0): 0.3 * 1 + 0.7 * 0
    assert [s["score"] for s in r["steps"]] == pytest.approx([1, 0.3, 1, 1, 1, 1])
    assert r["score"] == pytest.approx(5.3 / 6)
    product = (await verify(client, completion=BAD, verifiers=weights, aggregation="mean")).json()
    assert product["combine"] == "product" and product["steps"][1]["score"] == 0.0
    r = await verify(client, completion=GOOD, combine="sum")
    assert r.status_code == 400 and r.json()["error"]["param"] == "combine"


class Reading:
    """A reward model's stand-in: reads the text with a model (cost 1), scoring once `go` is
    set."""
    name = "reading"
    cost = 1

    def __init__(self):
        self.go = asyncio.Event()

    async def score(self, items, context):
        await self.go.wait()
        return [0.5] * len(items)


async def test_a_verification_holds_the_tokens_its_models_read_in_the_single_pass_lane(
        app, client):
    lane = app.state.chat_service.admission.lanes[SINGLE]  # shared with chat
    plugin = Reading()
    running = asyncio.create_task(verify_with(app, client, plugin))
    while not lane.running:
        await asyncio.sleep(0.01)
    # the fake engine's tokens are characters: the problem's and "a\nb"'s, once (`fixed` reads
    # nothing with a model)
    assert lane.in_flight == len(PROBLEM) + len("a\nb")
    plugin.go.set()
    assert (await running).status_code == 200
    assert lane.in_flight == lane.running == 0


async def test_a_full_single_pass_lane_refuses_a_verification_with_429(engine):
    settings = Settings(default_strategy="greedy", single_pass_capacity=64, single_pass_queue=0)
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        lane = app.state.chat_service.admission.lanes[SINGLE]  # shared with chat
        held = await lane.acquire(64, time.monotonic() + 60)  # a single pass fills the lane
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await verify(client, completion=GOOD)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limit_exceeded" and "Retry-After" in r.headers
            lane.release(held)
            assert (await verify(client, completion=GOOD)).status_code == 200
