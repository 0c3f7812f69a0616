"""Which replica the engine calls of one client request go to, without search code knowing.

The server opens a `request_scope()` per HTTP request. A context variable holds a small mutable
`Affinity` for that request; asyncio copies the context into every task the request spawns (a
search's concurrent expansions, the scorer's PRM and ORM calls), so all of them see the same
object. A remote engine records there the replica the request's first call went to and sends
the later ones to it, so the request's shared prefixes hit that replica's prefix cache. The
local engine ignores it. Nothing outlives the request: no table to expire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Affinity:
    replica: str | None = None  # set by the engine on the request's first call


_CURRENT: ContextVar[Affinity | None] = ContextVar("deliberate_affinity", default=None)


def current() -> Affinity | None:
    """The calling request's affinity, or None outside a request scope."""
    return _CURRENT.get()


@contextlib.contextmanager
def request_scope() -> Iterator[Affinity]:
    """Engine calls made inside (and in tasks started inside) share one replica."""
    affinity = Affinity()
    token = _CURRENT.set(affinity)
    try:
        yield affinity
    finally:
        _CURRENT.reset(token)
