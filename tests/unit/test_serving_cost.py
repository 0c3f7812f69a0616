"""What keeps the serving layer's per-request cost down (issue 32): the request path runs on the
event loop alone."""

from __future__ import annotations

import inspect

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from server.app import create_app
from server.settings import Settings


def _calls(dependant: Dependant):
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_no_route_runs_a_dependency_or_endpoint_in_the_threadpool():
    # FastAPI runs a plain `def` dependency or endpoint in a worker thread: a thread hop, and a
    # second thread contending for the GIL, on every request
    app = create_app(Settings(default_strategy="greedy"))
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert routes
    sync = sorted({f"{route.path}: {call.__name__}" for route in routes
                   for call in _calls(route.dependant)
                   if not (inspect.iscoroutinefunction(call)
                           or inspect.iscoroutinefunction(getattr(call, "__call__", None)))})
    assert sync == []
