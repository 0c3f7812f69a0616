"""A lane's limits from what the engine sustains: its measured drain rate and a target delay.

The drain rate is the tokens the lane's requests spent (reconciled at release) per second the
lane was busy, over the last `window_s`, per replica. From it:
- capacity (expected spend in flight): what the lane drains in `target_delay_s`, between a
  floor and a ceiling per replica. The measured rate says what the engine sustains only when
  the lane asks more of it than it gives: when requests wait (saturated; the capacity then
  follows the rate up or down), or when the work in flight takes longer than `target_delay_s` to
  drain (overloaded; down). At any other time the rate is what clients asked for and the
  capacity stays. Before anything is measured it is the ceiling: an idle server admits what it
  may. A step moves it by at most a factor of two, once a second at most, so that a burst's
  first releases, measured against the quiet before it, cannot swing it to a bound.
- queue: what the lane drains within `max_wait_s`.
- the drain rate itself, for expected waits and Retry-After: before any measurement, what the
  capacity drains in `target_delay_s`.
A fixed capacity or queue (the settings) overrides the measured one. With a fleet the per-replica
values scale with the replicas in rotation: the capacity drops when one is ejected and comes
back with it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

from server.admission.metrics import CAPACITY, DRAIN_RATE, QUEUE_LIMIT

_UPDATE_EVERY_S = 1.0
_MAX_STEP = 2.0


@dataclass(frozen=True)
class LaneLimits:
    floor: int = 1  # capacity per replica, at least
    ceiling: int = 65536  # and at most; the capacity before anything is measured
    capacity: int | None = None  # fixed: the lane's capacity whatever is measured
    queue: int | None = None  # fixed: the lane's queue whatever is measured
    target_delay_s: float = 10.0
    max_wait_s: float = 60.0

    @classmethod
    def fixed(cls, capacity: int, queue: int, **others) -> LaneLimits:
        return cls(capacity=capacity, queue=queue, **others)


class Throughput:
    """Tokens per second of busy time over the last `window_s`, once `min_finished` requests
    have finished in it; with fewer in it, the last such measurement (None before any). A burst
    that holds the engine for longer than the window finishes nothing in it: falling back to the
    unmeasured default there (the capacity over the target delay) told a remote burst's search
    lane it drained 819 tokens a second where it had drained 29, and its queue took 17 times what
    it could start in time (benchmarks/results/admission.md, 61 s into the burst)."""

    def __init__(self, window_s: float = 60.0, min_finished: int = 3) -> None:
        self.window_s = window_s
        self.min_finished = min_finished
        self._done: collections.deque[tuple[float, float]] = collections.deque()
        self._tokens = 0.0  # of _done
        self._busy: collections.deque[tuple[float, float]] = collections.deque()  # closed
        self._busy_s = 0.0  # of _busy, whole
        self._since: float | None = None  # the open busy period's start
        self._rate: tuple[float, float | None] | None = None  # (now, per_s(now)) until a change
        self._measured: float | None = None  # the last rate over min_finished requests

    def busy(self, now: float, busy: bool) -> None:
        if busy and self._since is None:
            self._since = now
        elif not busy and self._since is not None:
            self._busy.append((self._since, now))
            self._busy_s += now - self._since
            self._since = None
        self._rate = None

    def add(self, now: float, tokens: float) -> None:
        self._done.append((now, tokens))
        self._tokens += tokens
        self._rate = None

    def per_s(self, now: float) -> float | None:
        # asked several times per request at the same instant (limits, gauges): once suffices
        if self._rate is not None and self._rate[0] == now:
            return self._rate[1]
        start = now - self.window_s
        while self._done and self._done[0][0] <= start:
            self._tokens -= self._done.popleft()[1]
        while self._busy and self._busy[0][1] < start:
            begin, end = self._busy.popleft()
            self._busy_s -= end - begin
        if len(self._done) >= self.min_finished:
            # the periods are disjoint and in order: only the oldest can start before the window
            busy = self._busy_s - (max(start - self._busy[0][0], 0.0) if self._busy else 0.0)
            if self._since is not None:
                busy += now - max(self._since, start)
            self._measured = max(self._tokens, 0.0) / max(busy, 1e-3)
        self._rate = (now, self._measured)
        return self._measured


class Capacity:
    def __init__(self, name: str, limits: LaneLimits, replicas: Callable[[], int] = lambda: 1,
                 window_s: float = 60.0) -> None:
        self.name = name
        self.limits = limits
        self.replicas = replicas
        self.throughput = Throughput(window_s)  # per replica
        self._per_replica = float(limits.ceiling)
        self._updated = float("-inf")

    def fleet(self) -> int:
        """Replicas in rotation (1 when none: a request then gets the engine's 503)."""
        return max(self.replicas(), 1)

    def capacity(self) -> int:
        if self.limits.capacity is not None:
            return self.limits.capacity
        return max(int(self._per_replica * self.fleet()), 1)

    def drain_rate(self, now: float) -> float:
        """Tokens per second the lane finishes: measured, else what the capacity finishes in
        the target delay."""
        per_replica = self.throughput.per_s(now)
        if per_replica is None:
            return self.capacity() / self.limits.target_delay_s
        return max(per_replica * self.fleet(), 1e-3)

    def queue_limit(self, now: float) -> int:
        if self.limits.queue is not None:
            return self.limits.queue
        return int(self.drain_rate(now) * self.limits.max_wait_s)

    def busy(self, now: float, busy: bool) -> None:
        self.throughput.busy(now, busy)

    def finished(self, now: float, tokens: int) -> None:
        self.throughput.add(now, tokens / self.fleet())

    def update(self, now: float, saturated: bool, in_flight: int) -> None:
        """Follows the measured rate when it says what the engine sustains (see above)."""
        per_replica = self.throughput.per_s(now)
        if (self.limits.capacity is None and per_replica is not None
                and now - self._updated >= _UPDATE_EVERY_S):
            target = per_replica * self.limits.target_delay_s
            overloaded = in_flight > target * self.fleet()
            if saturated or (overloaded and target < self._per_replica):
                self._updated = now
                target = min(max(target, self._per_replica / _MAX_STEP),
                             self._per_replica * _MAX_STEP)
                self._per_replica = float(min(max(target, self.limits.floor),
                                              self.limits.ceiling))

    def expose(self, clock: Callable[[], float]) -> None:
        """The lane's gauges, read when /metrics is scraped."""
        CAPACITY.labels(self.name).set_function(self.capacity)
        QUEUE_LIMIT.labels(self.name).set_function(lambda: self.queue_limit(clock()))
        DRAIN_RATE.labels(self.name).set_function(lambda: self.drain_rate(clock()))
