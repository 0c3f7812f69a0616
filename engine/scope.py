"""The scope of one client request, seen by every engine call made while serving it.

A search makes dozens of engine calls from deep inside search and verifier code. What they share
as one request (which replica serves them, whose prefix cache they may read) is set once by the
server around the request and read here by the engine, so the code in between passes nothing
along. asyncio tasks copy the context when created, so the search's concurrent calls see it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestScope:
    # One client request: an engine in front of several replicas sends all its calls to one.
    key: str
    # Tenant isolation of the prefix cache (vLLM's cache_salt): requests with different salts
    # never share cached blocks. None: the shared cache.
    cache_salt: str | None = None


_current: ContextVar[RequestScope | None] = ContextVar("deliberate_request_scope", default=None)


def current_scope() -> RequestScope | None:
    return _current.get()


@contextlib.contextmanager
def request_scope(scope: RequestScope) -> Iterator[RequestScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
