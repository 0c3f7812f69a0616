"""When a request arriving at a full lane would start, as the engine serves what is running.

vLLM's continuous batching gives every running sequence a token per step, so a request moves at
a pace proportional to its cost (a search of three beams runs three sequences): the lane's drain
rate is shared among its running requests in proportion to their costs. Each then finishes the
same fraction of its cost per second, `rate / in_flight`, and requests that started together
finish together. A burst's first requests therefore release nothing until they are all nearly
done: the work in flight takes `in_flight / rate` seconds to make room, not the seconds a queue
draining token by token would take. Measured on two replicas: a burst's searches held the lane
for 87 s while that token-by-token estimate gave its first waiters 5 s, and 123 of them were
refused after a minute in the queue (benchmarks/results/admission.md).

`Progress` keeps a virtual clock, the fraction of its cost every running request has done since
the lane began, and forecasts a waiter's start by playing the running requests' ends forward.
"""

from __future__ import annotations

import collections
import heapq


class Progress:
    def __init__(self) -> None:
        self.done = 0.0  # the virtual clock: the fraction of its cost each running request did
        self._at: float | None = None  # when `done` was last advanced
        self._started: dict[int, collections.deque[float]] = {}  # cost -> clocks at start

    def advance(self, now: float, in_flight: int, rate: float) -> None:
        """Moves the clock to `now`: `in_flight` (expected spend) was running, drained at
        `rate` tokens per second."""
        if self._at is not None and in_flight > 0:
            self.done += max(now - self._at, 0.0) * rate / in_flight
        self._at = now

    def start(self, cost: int) -> None:
        self._started.setdefault(cost, collections.deque()).append(self.done)

    def finish(self, cost: int) -> None:
        """A request of `cost` ended: the oldest of that cost is taken to be the one (requests
        of equal cost differ only in when they started, and the oldest is likeliest done)."""
        starts = self._started.get(cost)
        if starts:
            starts.popleft()
            if not starts:
                del self._started[cost]

    def wait(self, in_flight: int, capacity: int, rate: float, ahead: list[int], cost: int,
             horizon: float) -> float:
        """Seconds until a request of `cost`, queued behind `ahead` (costs, first come first
        served), starts in a lane of `capacity` that holds `in_flight` and drains `rate` tokens
        per second; past `horizon` the forecast stops and says how far it got."""
        ends = [(start + 1.0, c) for c, starts in self._started.items() for start in starts]
        untracked = in_flight - sum(c for _, c in ends)
        if untracked > 0:  # held outside start() (tests, or a lane rebuilt): taken as just begun
            ends.append((self.done + 1.0, untracked))
        heapq.heapify(ends)
        clock, load, seconds = self.done, in_flight, 0.0
        for i, next_cost in enumerate((*ahead, cost)):
            while load > 0 and load + next_cost > capacity:
                if not ends or seconds > horizon:
                    return seconds
                end, ended = heapq.heappop(ends)
                seconds += max(end - clock, 0.0) * load / rate
                clock = max(clock, end)
                load -= ended
            if i < len(ahead):
                heapq.heappush(ends, (clock + 1.0, next_cost))
                load += next_cost
        return seconds
