"""Admission control: bounded work in flight and a bounded queue, counted by cost.

A request costs the tokens it may make the engine generate: a single pass n x max_tokens, a
search its budget_tokens. Each lane (single passes, searches) admits requests first come first
served while their costs fit its capacity; a request that does not fit waits in the lane's queue,
and one that would overflow the queue, or waits past its time, is refused with 429 and a
Retry-After estimated from the lane's recent throughput. The lanes are apart so that searches,
which cost hundreds of times more, never hold back single passes. A request that costs more
than the whole capacity runs alone.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from server.errors import APIError

IN_FLIGHT = Gauge("deliberate_admission_in_flight_cost",
                  "Cost (tokens) of the requests running, per lane", ["lane"])
QUEUED = Gauge("deliberate_admission_queued_cost",
               "Cost (tokens) of the requests waiting to start, per lane", ["lane"])
RUNNING = Gauge("deliberate_admission_running_requests", "Requests running, per lane", ["lane"])
WAITING = Gauge("deliberate_admission_waiting_requests", "Requests waiting, per lane", ["lane"])
REJECTED = Counter("deliberate_admission_rejected",
                   "Requests refused with 429, per lane and reason (queue_full, queue_timeout)",
                   ["lane", "reason"])
WAIT = Histogram("deliberate_admission_wait_seconds", "Time from arrival to start, per lane",
                 ["lane"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60))

SINGLE, SEARCH = "single", "search"
_THROUGHPUT_WINDOW_S = 60.0


class Overloaded(APIError):
    def __init__(self, lane: str, why: str, retry_after_s: int) -> None:
        super().__init__(429, f"the server is busy ({why}); retry after {retry_after_s} s",
                         code="rate_limit_exceeded", headers={"Retry-After": str(retry_after_s)})
        self.lane = lane


@dataclass
class _Waiter:
    cost: int
    ready: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop()
                                  .create_future())


class Lane:
    def __init__(self, name: str, capacity: int, queue: int, queue_timeout_s: float) -> None:
        self.name = name
        self.capacity = capacity
        self.queue_limit = queue
        self.queue_timeout_s = queue_timeout_s
        self.in_flight = 0
        self.running = 0
        self.waiters: collections.deque[_Waiter] = collections.deque()
        self._done: collections.deque[tuple[float, int]] = collections.deque()  # (time, cost)

    @property
    def queued(self) -> int:
        return sum(w.cost for w in self.waiters)

    async def acquire(self, cost: int, deadline: float) -> int:
        """Waits for room for `cost` (clipped to the capacity); returns the cost held."""
        cost = max(1, min(cost, self.capacity))
        arrived = time.monotonic()
        if not self.waiters and self._fits(cost):
            self._start(cost)
            WAIT.labels(self.name).observe(0.0)
            return cost
        if self.queued + cost > self.queue_limit:
            raise self._refuse("queue_full", "its queue is full", cost)
        waiter = _Waiter(cost)
        self.waiters.append(waiter)
        self._publish()
        timeout = min(self.queue_timeout_s, deadline - arrived)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.ready), max(timeout, 0.0))
        except TimeoutError:
            if not waiter.ready.done():
                self.waiters.remove(waiter)
                self._publish()
                raise self._refuse("queue_timeout", f"waited {timeout:.0f} s", cost) from None
        except asyncio.CancelledError:  # the client left while waiting
            if waiter.ready.done():
                self.release(cost)
            else:
                self.waiters.remove(waiter)
                self._publish()
            raise
        WAIT.labels(self.name).observe(time.monotonic() - arrived)
        return cost

    def release(self, cost: int) -> None:
        self.in_flight -= cost
        self.running -= 1
        now = time.monotonic()
        self._done.append((now, cost))
        while self._done and self._done[0][0] < now - _THROUGHPUT_WINDOW_S:
            self._done.popleft()
        while self.waiters and self._fits(self.waiters[0].cost):  # first come, first served
            waiter = self.waiters.popleft()
            self._start(waiter.cost)
            waiter.ready.set_result(None)
        self._publish()

    def _fits(self, cost: int) -> bool:
        return self.in_flight == 0 or self.in_flight + cost <= self.capacity

    def _start(self, cost: int) -> None:
        self.in_flight += cost
        self.running += 1
        self._publish()

    def _refuse(self, reason: str, why: str, cost: int) -> Overloaded:
        REJECTED.labels(self.name, reason).inc()
        return Overloaded(self.name, f"{self.name} lane: {why}", self.retry_after(cost))

    def retry_after(self, cost: int) -> int:
        """Seconds until the work ahead of a new request of `cost` should be done, at the
        throughput of the last minute (1 s when nothing finished yet)."""
        if not self._done:
            return 1
        span = max(time.monotonic() - self._done[0][0], 1.0)
        per_s = sum(c for _, c in self._done) / span
        ahead = self.in_flight + self.queued + cost - self.capacity
        return int(min(max(math.ceil(ahead / per_s), 1), 600))

    def _publish(self) -> None:
        IN_FLIGHT.labels(self.name).set(self.in_flight)
        QUEUED.labels(self.name).set(self.queued)
        RUNNING.labels(self.name).set(self.running)
        WAITING.labels(self.name).set(len(self.waiters))


class Ticket:
    """A request's hold on a lane, released exactly once (by the request's end, however it
    ends); `move` changes lanes when a routed request turns out to be a search."""

    def __init__(self, admission: Admission, deadline: float) -> None:
        self.admission = admission
        self.deadline = deadline
        self.lane: Lane | None = None
        self.cost = 0

    async def enter(self, lane: str, cost: int) -> None:
        self.release()
        target = self.admission.lanes[lane]
        self.cost = await target.acquire(cost, self.deadline)
        self.lane = target

    def release(self) -> None:
        if self.lane is not None:
            lane, self.lane = self.lane, None
            lane.release(self.cost)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


class Admission:
    def __init__(self, settings) -> None:
        s = settings
        self.lanes = {
            SINGLE: Lane(SINGLE, s.single_pass_capacity, s.single_pass_queue, s.queue_timeout_s),
            SEARCH: Lane(SEARCH, s.search_capacity, s.search_queue, s.queue_timeout_s),
        }
        self.request_timeout_s = s.request_timeout_s

    def ticket(self) -> Ticket:
        return Ticket(self, time.monotonic() + self.request_timeout_s)
