"""What keeps the serving layer's per-request cost down (issue 32): the request path runs on the
event loop alone."""

from __future__ import annotations

import inspect

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from server.app import create_app
from server.settings import Settings


def _calls(dependant: Dependant):
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_no_route_runs_a_dependency_or_endpoint_in_the_threadpool():
    # FastAPI runs a plain `def` dependency or endpoint in a worker thread: a thread hop, and a
    # second thread contending for the GIL, on every request
    app = create_app(Settings(default_strategy="greedy"))
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert routes
    sync = sorted({f"{route.path}: {call.__name__}" for route in routes
                   for call in _calls(route.dependant)
                   if not (inspect.iscoroutinefunction(call)
                           or inspect.iscoroutinefunction(getattr(call, "__call__", None)))})
    assert sync == []


async def test_the_admission_gauges_say_the_lanes_state_when_scraped():
    # read at scrape time (set_function), no longer written at every start and release
    from prometheus_client import REGISTRY

    from server.admission import SINGLE, Admission, Shape

    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(f"deliberate_admission_{name}", {"lane": SINGLE})

    admission = Admission(Settings(single_pass_capacity=1000, single_pass_queue=500))
    lane = admission.lanes[SINGLE]
    ticket = admission.ticket()
    await ticket.enter(SINGLE, 64, Shape.of("greedy", {"n": 1, "max_tokens": 64}))
    assert gauge("in_flight_cost") == lane.in_flight > 0
    assert gauge("running_requests") == 1
    assert (gauge("capacity"), gauge("queue_limit")) == (1000, 500)
    ticket.spent(20)
    ticket.release()
    assert (gauge("in_flight_cost"), gauge("running_requests"), gauge("waiting_requests"),
            gauge("queued_cost")) == (0, 0, 0, 0)
    assert gauge("drain_rate") == lane.limits.drain_rate(lane.clock())


def test_the_drain_rate_counts_the_busy_time_inside_its_window_only():
    # the busy time is a running sum (it was summed over every period at every call): a period
    # that began before the window counts from the window's start, one that ended before it not
    from server.admission.capacity import Throughput

    throughput = Throughput(window_s=10.0, min_finished=1)
    periods = [(0.0, 4.0), (5.0, 7.0), (8.0, 12.0), (13.0, 14.0)]
    for begin, end in periods:
        throughput.busy(begin, True)
        throughput.add(end, 10.0)
        throughput.busy(end, False)
    throughput.busy(15.0, True)  # open until now
    now = 16.0  # window [6, 16]: 1 of (5, 7), all of (8, 12) and (13, 14), 1 open
    assert throughput.per_s(now) == 30.0 / (1 + 4 + 1 + 1)
    assert throughput.per_s(now) == 30.0 / 7  # asked again at the same instant
    throughput.busy(16.5, False)
    assert throughput.per_s(19.0) == 20.0 / (4 - 1 + 1 + 1.5)  # window [9, 19]
