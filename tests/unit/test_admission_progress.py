"""The forecast of a waiter's start: running requests share the drain rate in proportion to
their costs, so those begun together end together, and earlier ones end first."""

from __future__ import annotations

import pytest

from server.admission.progress import Progress


def test_requests_begun_together_end_together():
    progress = Progress()
    progress.advance(0.0, 0, 30.0)
    for _ in range(3):
        progress.start(100)
    # 300 running at 30 a second: nothing ends before 10 s, and then all of it
    assert progress.wait(300, 300, 30.0, [], 100, horizon=1000) == pytest.approx(10)
    assert progress.wait(300, 300, 30.0, [], 300, horizon=1000) == pytest.approx(10)
    # a token-by-token drain would have started a request of 100 after 100 / 30 = 3.3 s


def test_a_request_begun_earlier_ends_first():
    progress = Progress()
    progress.advance(0.0, 0, 10.0)
    progress.start(100)  # alone, at 10 a second: half done at 5 s
    progress.advance(5.0, 100, 10.0)
    progress.start(100)
    # the first has half its cost to go at half the rate: 10 s; then the second has 0.5 left
    assert progress.wait(200, 200, 10.0, [], 100, horizon=1000) == pytest.approx(10)
    assert progress.wait(200, 200, 10.0, [], 200, horizon=1000) == pytest.approx(15)
    progress.advance(10.0, 200, 10.0)  # 5 s on: the first is three quarters done
    assert progress.wait(200, 200, 10.0, [], 100, horizon=1000) == pytest.approx(5)


def test_a_waiter_starts_behind_those_ahead_of_it_first_come_first_served():
    progress = Progress()
    progress.advance(0.0, 0, 10.0)
    progress.start(100)
    # a lane of 100 running 100: the 100 ahead starts at 10 s and ends at 20 s
    assert progress.wait(100, 100, 10.0, [100], 100, horizon=1000) == pytest.approx(20)
    # the lane is full: the 1 ahead waits for the first to end too, and then both fit
    assert progress.wait(100, 100, 10.0, [1], 99, horizon=1000) == pytest.approx(10)


def test_the_request_that_ended_is_taken_off_oldest_first():
    progress = Progress()
    progress.advance(0.0, 0, 10.0)
    progress.start(100)
    progress.advance(5.0, 100, 10.0)
    progress.start(100)
    progress.finish(100)  # the older one
    # the one left began at 5 s and the clock has not moved since: all its cost to go, alone
    assert progress.wait(100, 100, 10.0, [], 100, horizon=1000) == pytest.approx(10)


def test_work_held_outside_the_clock_is_taken_as_just_begun():
    progress = Progress()
    assert progress.wait(500, 500, 50.0, [], 100, horizon=1000) == pytest.approx(10)


def test_the_forecast_stops_past_its_horizon():
    progress = Progress()
    progress.advance(0.0, 0, 1.0)
    for _ in range(5):
        progress.start(100)
        progress.advance(0.0, 100, 1.0)
    # five begun together end at 500 s: past a horizon of 50 s the forecast stops there rather
    # than play the ten ahead
    assert progress.wait(500, 100, 1.0, [100] * 10, 100, horizon=50) == pytest.approx(500)
