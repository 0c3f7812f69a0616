"""Stored responses, for `previous_response_id` and `GET /v1/responses/{id}`: in memory,
per API key (a tenant sees only its own), at most `size` of them (the oldest go first), each
for `ttl_s` seconds. A restart, or another replica of this server, forgets them: a client that
needs a conversation to outlive that sends its whole input instead."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stored:
    body: dict[str, Any]  # the response as it was returned
    messages: tuple[dict[str, Any], ...]  # the conversation it ends (chat messages), answer last


class ResponseStore:
    def __init__(self, size: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[tuple[str, str], tuple[float, Stored]] = OrderedDict()

    def put(self, tenant: str, response_id: str, stored: Stored) -> None:
        if self.size == 0:
            return
        self._expire()
        self._items[(tenant, response_id)] = (self._clock() + self.ttl_s, stored)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, tenant: str, response_id: str) -> Stored | None:
        """The tenant's stored response, None if it was never stored (for this tenant),
        evicted or expired."""
        self._expire()
        found = self._items.get((tenant, response_id))
        return None if found is None else found[1]

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def _expire(self) -> None:
        # entries are kept in insertion order and all live ttl_s: the expired ones are first
        now = self._clock()
        while self._items:
            expires, _ = next(iter(self._items.values()))
            if expires > now:
                return
            self._items.popitem(last=False)
