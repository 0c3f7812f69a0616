"""A request's admission cost is what it is expected to spend: the prior, what is learned from
the requests that finished, the cap, and the lanes' books reconciled with the actual spend."""

from __future__ import annotations

import asyncio
import json

import pytest

from server.admission import Admission, CostEstimator, Shape
from server.settings import Settings
from tests.search_fakes import StepEngine

BEAM = Shape.of("beam", {"beam_width": 3, "n_candidates": 3, "max_depth": 5, "max_tokens": 100})


def test_a_shape_keeps_the_options_that_multiply_its_spend():
    shape = Shape.of("beam", {"beam_width": 3, "n_candidates": 2, "max_tokens": 100,
                              "temperature": 0.7, "budget_tokens": 16384, "simulations": None})
    assert shape.options == (("beam_width", 3), ("n_candidates", 2), ("max_tokens", 100))
    assert shape.nominal == 3 * 2 * 100
    # a sample counts 512 tokens at most: an unset max_tokens is the context's whole room
    assert Shape.of("greedy", {"n": 2, "max_tokens": 32_000}).nominal == 2 * 512


def test_before_anything_finished_the_prior_share_of_the_nominal_spend():
    costs = CostEstimator(prior=0.25)
    assert costs.expected(BEAM, cap=16384) == 0.25 * 900


def test_the_expected_cost_is_never_above_the_cap_nor_below_one_token():
    costs = CostEstimator(prior=0.25)
    assert costs.expected(BEAM, cap=100) == 100
    costs.observe(BEAM, 0)
    assert costs.expected(BEAM, cap=100) == 1
    costs.observe(Shape.of("mcts", {"simulations": 64, "max_tokens": 500}), 50_000)
    assert costs.expected(Shape.of("mcts", {"simulations": 64, "max_tokens": 500}), 16384) \
        == 16384


def test_the_expected_cost_learns_what_a_shape_spends():
    costs = CostEstimator(prior=0.25, alpha=0.5)
    costs.observe(BEAM, 300)
    assert costs.expected(BEAM, cap=16384) == 300  # the first one sets it
    costs.observe(BEAM, 500)
    assert costs.expected(BEAM, cap=16384) == 400  # then a moving average


def test_an_unseen_shape_takes_its_strategys_learned_share():
    costs = CostEstimator(prior=0.25)
    costs.observe(BEAM, 90)  # a tenth of its nominal 900
    wider = Shape.of("beam", {"beam_width": 6, "n_candidates": 3, "max_depth": 5,
                              "max_tokens": 100})
    assert costs.expected(wider, cap=16384) == 180
    # another strategy has learned nothing: the prior
    assert costs.expected(Shape.of("mcts", {"simulations": 4, "max_tokens": 100}), 16384) == 100


def test_the_estimator_forgets_the_least_recently_seen_shapes():
    costs = CostEstimator(prior=0.25, max_shapes=2)
    shapes = [Shape.of("greedy", {"n": 1, "max_tokens": m}) for m in (10, 20, 30)]
    for shape in shapes:
        costs.observe(shape, 5)
    assert shapes[0] not in costs._spend and set(costs._spend) == set(shapes[1:])


# --- tickets: held at the expected cost, reconciled at release --------------------------------

def admission(**settings) -> Admission:
    return Admission(Settings(**{"search_capacity": 10_000, "search_queue": 0, **settings}))


async def test_a_ticket_holds_the_expected_cost_and_reconciles_the_actual_spend():
    control = admission()
    lane = control.lanes["search"]
    ticket = control.ticket()
    await ticket.enter("search", 16384, BEAM)
    assert ticket.cost == lane.in_flight == 225  # the prior's, not the cap
    ticket.spent(40)
    ticket.release()
    assert (lane.in_flight, lane.running) == (0, 0)
    assert lane.limits.throughput._done[-1][1] == 40  # its drain rate counts what it spent
    assert control.costs.expected(BEAM, 16384) == 40  # and the estimator learned it


async def test_a_ticket_released_without_its_spend_counts_its_cost_and_teaches_nothing():
    control = admission()
    ticket = control.ticket()
    await ticket.enter("search", 16384, BEAM)
    ticket.release()  # an error, or the client gone
    assert control.lanes["search"].limits.throughput._done[-1][1] == 225
    assert control.costs.expected(BEAM, 16384) == 225


async def test_a_ticket_moved_to_another_lane_reconciles_each_hold_with_its_own_share():
    control = admission()
    probe = Shape.of("auto", {"n": 1, "max_tokens": 32})
    ticket = control.ticket()
    await ticket.enter("single", 32, probe)
    ticket.spent(12)  # the probe
    await ticket.enter("search", 16384, BEAM)
    ticket.spent(12 + 300)  # the whole request: probe and search
    ticket.release()
    assert control.costs.expected(probe, 32) == 12
    assert control.costs.expected(BEAM, 16384) == 300


# --- through the API --------------------------------------------------------------------------

PROMPT = "Compute: 2+3*4\n"
SCRIPT = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT, delay_s=0.05)


@pytest.fixture
def settings() -> Settings:
    # the search lane as it was by default: 65536 tokens, four searches at their default budget
    return Settings(search_verifiers={"logic": 1.0}, default_strategy="greedy",
                    search_capacity=65536, search_queue=0, queue_timeout_s=5)


async def test_default_searches_are_admitted_by_what_they_spend_not_by_their_budget(client):
    # as the issue found: 16 default searches, no queue; counted at their budget of 16384 four
    # ran and twelve got 429
    body = {"model": "demo", "prompt": PROMPT, "reasoning": {"strategy": "beam"}}
    answers = await asyncio.gather(*(client.post("/v1/completions", json=body)
                                     for _ in range(16)))
    assert [r.status_code for r in answers] == [200] * 16


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("reasoning", [{"strategy": "greedy"}, {"strategy": "beam"}])
async def test_the_estimator_learns_the_spend_a_response_reports(client, app, stream, reasoning):
    costs = app.state.completion_service.admission.costs
    body = {"model": "demo", "prompt": PROMPT, "max_tokens": 64, "reasoning": reasoning,
            "stream": stream, "stream_options": {"include_usage": True} if stream else None}
    if stream:
        async with client.stream("POST", "/v1/completions", json=body) as r:
            lines = [line async for line in r.aiter_lines() if line.startswith("data: {")]
        usage = json.loads(lines[-1][len("data: "):])["usage"]
    else:
        r = await client.post("/v1/completions", json=body)
        usage = r.json()["usage"]
    assert r.status_code == 200
    learned = {shape: spend for shape, spend in costs._spend.items()
               if shape.strategy == reasoning["strategy"]}
    assert list(learned.values()) == [usage["completion_tokens"]]
    assert all(lane.in_flight == 0 for lane in app.state.completion_service.admission
               .lanes.values())
