"""A lane: requests admitted first come first served while their costs fit its capacity; a
request that does not fit waits in the lane's queue, and one that would overflow the queue, or
that the work ahead of it would not let start within the lane's wait (forecast as the engine
serves what runs: progress.py), is refused at once with 429 and a Retry-After estimated from the
lane's drain rate; one that waits past its time all the same is refused then. A request that
costs more than the whole capacity runs alone. The capacity, the queue and the drain rate are
the lane's `Capacity` (capacity.py)."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.admission.capacity import Capacity
from server.admission.metrics import IN_FLIGHT, QUEUED, REJECTED, RUNNING, WAIT, WAITING
from server.admission.progress import Progress
from server.errors import APIError

SINGLE, SEARCH = "single", "search"
_RATE_MARGIN = 0.8
_MAX_RETRY_AFTER_S = 600
_QUEUE_TIMEOUT_SLACK_S = 10.0


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
    """`limits`: the lane's capacity, queue and drain rate (capacity.py); `queue_timeout_s`:
    how long a request may wait to start (None: as long as its expected wait says)."""

    def __init__(self, name: str, limits: Capacity, queue_timeout_s: float | None,
                 clock: Callable[[], float] = time.monotonic, yields_to: Lane | None = None
                 ) -> None:
        self.name = name
        self.yields_to = yields_to  # the lane whose requests the engine schedules first
        self.limits = limits
        self.queue_timeout_s = queue_timeout_s
        self.clock = clock
        self.in_flight = 0
        self.running = 0
        self.waiters: collections.deque[_Waiter] = collections.deque()
        self.progress = Progress()
        self._saturated = False  # requests waited or were refused since the last update
        self._next_turn = 0.0  # when the next request refused may come back (retry_after)
        self._wait = WAIT.labels(name)
        # read when /metrics is scraped, rather than written at every start and release
        for gauge, value in ((IN_FLIGHT, lambda: self.in_flight), (QUEUED, lambda: self.queued),
                             (RUNNING, lambda: self.running),
                             (WAITING, lambda: len(self.waiters))):
            gauge.labels(name).set_function(value)
        limits.expose(clock)

    @property
    def capacity(self) -> int:
        return self.limits.capacity()

    @property
    def queue_limit(self) -> int:
        return self.limits.queue_limit(self.clock())

    @property
    def queued(self) -> int:
        return sum(w.cost for w in self.waiters)

    async def acquire(self, cost: int, deadline: float) -> int:
        """Waits for room for `cost` (clipped to the capacity); returns the cost held."""
        cost = max(1, min(cost, self.capacity))
        arrived = self.clock()
        if not self.waiters and self._fits(cost):
            self._start(cost)
            self._wait.observe(0.0)
            return cost
        self._saturated = True
        if self.queued + cost > self.queue_limit:
            raise self._refuse("queue_full", "its queue is full", cost)
        wait = self.expected_wait(cost)
        patience = min(self.max_wait_s, deadline - arrived)
        if wait > patience:
            raise self._refuse("queue_wait", f"the work ahead of it would not let it start "
                               f"within {patience:.0f} s", cost, wait_s=wait)
        waiter = _Waiter(cost)
        self.waiters.append(waiter)
        timeout = min(self.queue_timeout(cost, wait), deadline - arrived)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.ready), max(timeout, 0.0))
        except TimeoutError:
            if not waiter.ready.done():
                self.waiters.remove(waiter)
                raise self._refuse("queue_timeout", f"waited {timeout:.0f} s", cost) from None
        except asyncio.CancelledError:  # the client left while waiting
            if waiter.ready.done():
                self.release(cost, spent=0)
            else:
                self.waiters.remove(waiter)
            raise
        self._wait.observe(self.clock() - arrived)
        return cost

    @property
    def max_wait_s(self) -> float:
        """The longest a request is queued for: the fixed queue timeout, else the lane's max
        wait. A request forecast to wait longer is refused on arrival, not after the wait."""
        if self.queue_timeout_s is not None:
            return self.queue_timeout_s
        return self.limits.limits.max_wait_s

    def expected_wait(self, cost: int) -> float:
        """Seconds until a request of `cost` arriving now should start behind the requests
        waiting: the running ones and those ahead of it played forward at the lane's drain rate,
        as the engine shares it among them (progress.py)."""
        now = self.clock()
        rate = self.limits.drain_rate(now)
        self.progress.advance(now, self.in_flight, rate)
        wait = self.progress.wait(self.in_flight, self.capacity, rate,
                                  [w.cost for w in self.waiters], cost,
                                  horizon=self.max_wait_s + _MAX_RETRY_AFTER_S)
        return wait + self.priority_backlog_s(now, rate)

    def priority_backlog_s(self, now: float, rate: float) -> float:
        """Seconds the engine gives first to the lane this one yields to: the single passes'
        requests are scheduled ahead of the searches' calls (vLLM's priority scheduling), so
        while the engine is full the work that lane holds passes before this lane's moves, at
        both lanes' rates together. Measured on two replicas: a burst's 480 greedy requests
        held the engine for 100 s while the searches already running barely moved, and the
        searches queued behind them, forecast without it, waited 107 s for a 429."""
        ahead = self.yields_to
        if ahead is None:
            return 0.0
        return (ahead.in_flight + ahead.queued) / self.engine_rate(now, rate)

    def engine_rate(self, now: float, rate: float) -> float:
        """What the engine drains for this lane and the one it yields to together (this
        lane's own `rate` alone if it yields to none)."""
        return rate if self.yields_to is None else rate + self.yields_to.limits.drain_rate(now)

    def queue_timeout(self, cost: int, wait: float | None = None) -> float:
        """How long a request of `cost` arriving now (forecast to start in `wait` s) may wait
        to start: fixed, or twice its expected wait and ten seconds more (a search on a CPU
        drains in minutes what a GPU drains in seconds: one fixed timeout is too short for the
        one or too long for the other), and never less than the lane's max wait: the queue
        admits what it drains within that, so a request it took may wait that long. A burst
        that slows the drain below its measured rate (the other lane's requests take the
        engine) would otherwise time out requests it admitted: measured, 11 of a 640-request
        burst got their 429 after 20 s instead of an answer (benchmarks/admission.py)."""
        if self.queue_timeout_s is not None:
            return self.queue_timeout_s
        wait = self.expected_wait(cost) if wait is None else wait
        return max(2 * wait + _QUEUE_TIMEOUT_SLACK_S, self.limits.limits.max_wait_s)

    def release(self, cost: int, spent: int | None = None) -> None:
        """Frees the `cost` a request held; the drain rate counts what it `spent` (its cost
        when not known)."""
        now = self.clock()
        self.progress.advance(now, self.in_flight, self.limits.drain_rate(now))
        self.progress.finish(cost)
        self.in_flight -= cost
        self.running -= 1
        self.limits.finished(now, cost if spent is None else spent)
        if not self.running:
            self.limits.busy(now, False)
        self.limits.update(now, self._saturated or bool(self.waiters), self.in_flight)
        self._saturated = bool(self.waiters)
        while self.waiters and self._fits(self.waiters[0].cost):  # first come, first served
            waiter = self.waiters.popleft()
            self._start(waiter.cost)
            waiter.ready.set_result(None)

    def _fits(self, cost: int) -> bool:
        return self.in_flight == 0 or self.in_flight + cost <= self.capacity

    def _start(self, cost: int) -> None:
        now = self.clock()
        if not self.running:
            self.limits.busy(now, True)
        self.progress.advance(now, self.in_flight, self.limits.drain_rate(now))
        self.progress.start(cost)
        self.in_flight += cost
        self.running += 1

    def _refuse(self, reason: str, why: str, cost: int, wait_s: float = 0.0) -> Overloaded:
        REJECTED.labels(self.name, reason).inc()
        return Overloaded(self.name, f"{self.name} lane: {why}", self.retry_after(cost, wait_s))

    def retry_after(self, cost: int, wait_s: float = 0.0) -> int:
        """Seconds after which a request of `cost` refused now should find room: the work past
        the lane's capacity and queue drains first, at the lane's drain rate, or, refused for
        the `wait_s` the work ahead of it would have had it wait, once that has passed: it then
        comes back when it would have started, and the lane's max wait is its slack (coming
        back when its wait had just shrunk to the max, it was refused again whenever more work
        came first: 17% of a remote burst's refused). Both less a fifth, for the rate's noise:
        coming back late costs a client little, coming back early is another 429. So do the
        requests refused before it, which were given earlier turns: a refused burst comes back
        spread over the time the lane takes to make room for it, not all at once. A lane that
        yields to another spreads them at both lanes' rates: its turns come after the other's
        backlog (the forecast's wait counts it), when it has the engine to itself, while its
        own rate was measured as the other's requests took the engine first. Spread at that
        rate (57 tokens/s where the lanes drained 262 together), a remote burst's refused
        searches were told to come back up to 600 s later, and the lane stood a third full,
        then idle for 300 s, while they waited."""
        now = self.clock()
        rate = self.limits.drain_rate(now)
        per_s = rate * _RATE_MARGIN
        excess = self.in_flight + self.queued + cost - self.capacity - self.queue_limit
        delay = max(max(excess, 0) / per_s, max(wait_s, 0.0) / _RATE_MARGIN)
        turn = min(max(now + delay, self._next_turn), now + _MAX_RETRY_AFTER_S)
        self._next_turn = turn + cost / (self.engine_rate(now, rate) * _RATE_MARGIN)
        return int(min(max(math.ceil(turn - now), 1), _MAX_RETRY_AFTER_S))
