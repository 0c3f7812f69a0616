"""A lane's capacity follows what the engine sustains: its drain rate measured over busy time,
times the target delay, within the floor and ceiling; fixed settings override it."""

from __future__ import annotations

import asyncio

import pytest

from server.admission import Lane
from server.admission.capacity import Capacity, LaneLimits, Throughput

LIMITS = LaneLimits(floor=100, ceiling=100_000, target_delay_s=10, max_wait_s=30)


def test_the_drain_rate_counts_busy_time_only_once_enough_have_finished():
    meter = Throughput(window_s=60, min_finished=3)
    meter.busy(0.0, True)
    meter.add(1.0, 100)
    meter.add(2.0, 100)
    assert meter.per_s(2.0) is None  # two are not a measurement
    meter.add(2.0, 100)
    meter.busy(2.0, False)
    assert meter.per_s(2.0) == 150  # 300 tokens in 2 busy seconds
    assert meter.per_s(30.0) == 150  # idle time is not counted
    # out of the window: the last measurement holds (nothing finished is no news of the rate)
    meter.busy(62.0, True)
    assert meter.per_s(100.0) == 150
    meter.add(100.0, 40)
    meter.add(101.0, 40)
    meter.add(102.0, 40)
    assert meter.per_s(102.0) == 3  # 120 tokens in the window's 40 busy seconds


def saturated(capacity: Capacity, rate: float, seconds: int, start: float = 0.0,
              in_flight: int = 0, waiting: bool = True) -> float:
    """`seconds` of the lane draining `rate` tokens/s, busy throughout; returns the end."""
    capacity.busy(start, True)
    now = start
    for _ in range(seconds):
        now += 1.0
        capacity.finished(now, int(rate))
        capacity.update(now, saturated=waiting, in_flight=in_flight)
    return now


def test_before_anything_is_measured_the_capacity_is_the_ceiling():
    capacity = Capacity("search", LIMITS)
    assert capacity.capacity() == 100_000
    # and it is taken to drain what it holds in the target delay
    assert capacity.drain_rate(0.0) == 10_000
    assert capacity.queue_limit(0.0) == 300_000


def test_a_saturated_lane_follows_its_drain_rate_down_and_up():
    capacity = Capacity("search", LIMITS)
    now = saturated(capacity, rate=500, seconds=40)
    assert capacity.capacity() == 500 * 10  # what it drains in the target delay
    assert capacity.queue_limit(now) == 500 * 30
    # the engine gets faster (or more of the lane fits in its batches): the capacity follows
    saturated(capacity, rate=2000, seconds=70, start=now)
    assert capacity.capacity() == 2000 * 10


def test_a_step_moves_the_capacity_by_at_most_a_factor_of_two_once_a_second():
    capacity = Capacity("search", LIMITS)
    capacity.busy(0.0, True)
    for t in (0.2, 0.4, 0.6):
        capacity.finished(t, 10)
    capacity.update(0.6, saturated=True, in_flight=0)
    assert capacity.capacity() == 50_000  # towards 50 tok/s x 10 s, halved once
    capacity.finished(0.8, 10)
    capacity.update(0.8, saturated=True, in_flight=0)
    assert capacity.capacity() == 50_000  # not again within the second


def test_a_lane_that_is_neither_saturated_nor_overloaded_keeps_its_capacity():
    # few clients: the rate is what they ask for, not what the engine could do
    capacity = Capacity("search", LIMITS)
    saturated(capacity, rate=50, seconds=30, in_flight=100, waiting=False)
    assert capacity.capacity() == 100_000


def test_an_overloaded_lane_shrinks_without_waiters():
    # 20000 tokens in flight, drained at 500/s: 40 s of work against a target of 10
    capacity = Capacity("search", LIMITS)
    saturated(capacity, rate=500, seconds=40, in_flight=20_000, waiting=False)
    assert capacity.capacity() == 5000


@pytest.mark.parametrize(("rate", "expected"), [(1, 100), (1_000_000, 100_000)])
def test_the_capacity_stays_within_its_floor_and_ceiling(rate, expected):
    capacity = Capacity("search", LIMITS)
    saturated(capacity, rate=rate, seconds=40)
    assert capacity.capacity() == expected


def test_fixed_settings_override_what_is_measured():
    capacity = Capacity("search", LaneLimits.fixed(700, 50, target_delay_s=10))
    saturated(capacity, rate=500, seconds=40)
    assert capacity.capacity() == 700 and capacity.queue_limit(40.0) == 50
    assert capacity.drain_rate(40.0) == 500  # still measured, for Retry-After


async def test_a_lane_reports_what_its_requests_spent_and_whether_any_waited():
    lane = Lane("search", Capacity("search", LaneLimits.fixed(10, 100)), queue_timeout_s=5)
    lane.limits.drain_rate = lambda now: 100.0  # the waiter below is forecast to start in time
    seen = []
    lane.limits.update = lambda now, saturated, in_flight: seen.append((saturated, in_flight))
    await lane.acquire(10, float("inf"))
    lane.release(10, spent=3)
    assert seen == [(False, 0)]
    await lane.acquire(10, float("inf"))
    waiter = asyncio.create_task(lane.acquire(10, float("inf")))
    await asyncio.sleep(0.01)
    lane.release(10, spent=4)
    await waiter
    assert seen[-1] == (True, 0)
    assert [tokens for _, tokens in lane.limits.throughput._done] == [3, 4]
    assert lane.limits.throughput._since is not None  # busy: the waiter runs


def test_a_fleets_capacity_grows_and_shrinks_with_its_replicas_in_rotation():
    fleet = [2]
    capacity = Capacity("search", LIMITS, replicas=lambda: fleet[0])
    assert capacity.capacity() == 2 * 100_000  # the ceiling is per replica
    now = saturated(capacity, rate=1000, seconds=40)  # the fleet drains 1000/s: 500 each
    assert capacity.capacity() == 2 * 500 * 10
    assert capacity.drain_rate(now) == 1000
    fleet[0] = 1  # one ejected: at once, what the one left sustains
    assert capacity.capacity() == 500 * 10 and capacity.drain_rate(now) == 500
    assert capacity.queue_limit(now) == 500 * 30
    fleet[0] = 0  # none: as if one (the engine answers 503 while none is up)
    assert capacity.capacity() == 500 * 10
    fleet[0] = 2  # back
    assert capacity.capacity() == 2 * 500 * 10


async def test_the_server_sizes_its_lanes_by_a_fleets_replicas():
    from server.app import create_app
    from server.settings import Settings
    from tests.fakes import FakeEngine

    class FleetEngine(FakeEngine):
        up = 3

        def replicas_in_rotation(self) -> int:
            return self.up

    engine = FleetEngine()
    app = create_app(Settings(search_capacity_max=1000), engine)
    async with app.router.lifespan_context(app):
        lane = app.state.completion_service.admission.lanes["search"]
        assert lane.capacity == 3000
        engine.up = 2
        assert lane.capacity == 2000
