"""A request's ticket through the lanes, and the lanes the server admits by."""

from __future__ import annotations

import time
from collections.abc import Callable

from server.admission.capacity import Capacity, LaneLimits
from server.admission.cost import CostEstimator, Shape
from server.admission.lane import SEARCH, SINGLE, Lane


class Ticket:
    """A request's hold on a lane, released exactly once (by the request's end, however it
    ends); entering another lane releases the first (a routed request that turns out to be a
    search). A hold entered with a `Shape` counts the spend expected of it, and is reconciled at
    release with what the request reports it spent (`spent`): the lane's books and throughput
    take the actual spend, and the estimator learns it."""

    def __init__(self, admission: Admission, deadline: float) -> None:
        self.admission = admission
        self.deadline = deadline
        self.lane: Lane | None = None
        self.cost = 0
        self.shape: Shape | None = None
        self._spent: int | None = None  # reported, the request's whole spend so far
        self._settled = 0  # of which reconciled with holds already released

    async def enter(self, lane: str, cost: int, shape: Shape | None = None) -> None:
        """Waits for room in `lane` for `cost` tokens, or, with a `shape`, for the spend
        expected of that shape (`cost` is then its cap)."""
        self.release()
        target = self.admission.lanes[lane]
        expected = cost if shape is None else self.admission.costs.expected(shape, cost)
        self.cost = await target.acquire(expected, self.deadline)
        self.lane, self.shape = target, shape

    def spent(self, tokens: int) -> None:
        """The request has generated `tokens` in all, and its work in the current lane is done:
        the hold is reconciled with its share at release. A hold released without it (an error,
        the client gone) counts as its expected cost and teaches the estimator nothing."""
        if self.lane is not None:
            self._spent = tokens

    def release(self) -> None:
        if self.lane is None:
            return
        lane, self.lane = self.lane, None
        spent = None
        if self._spent is not None:
            spent, self._settled = max(self._spent - self._settled, 0), self._spent
            self._spent = None
            if self.shape is not None:
                self.admission.costs.observe(self.shape, spent)
        lane.release(self.cost, spent)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


class Admission:
    """The server's lanes. `replicas`: the engine's replicas in rotation (a fleet's capacity
    grows and shrinks with them)."""

    def __init__(self, settings, replicas: Callable[[], int] = lambda: 1) -> None:
        s = settings
        common = dict(target_delay_s=s.admission_target_delay_s,
                      max_wait_s=s.admission_max_wait_s)
        single = LaneLimits(s.single_pass_capacity_min, s.single_pass_capacity_max,
                            s.single_pass_capacity, s.single_pass_queue, **common)
        search = LaneLimits(s.search_capacity_min, s.search_capacity_max, s.search_capacity,
                            s.search_queue, **common)
        single_lane = Lane(SINGLE, Capacity(SINGLE, single, replicas), s.queue_timeout_s)
        self.lanes = {
            SINGLE: single_lane,
            SEARCH: Lane(SEARCH, Capacity(SEARCH, search, replicas), s.queue_timeout_s,
                         yields_to=single_lane),
        }
        self.costs = CostEstimator()
        self.request_timeout_s = s.request_timeout_s

    def ticket(self) -> Ticket:
        return Ticket(self, time.monotonic() + self.request_timeout_s)
