"""A request's ticket through the lanes, and the lanes the server admits by."""

from __future__ import annotations

import time

from server.admission.lane import SEARCH, SINGLE, Lane


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
