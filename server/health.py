"""GET /health: 200 while the engine answers (remote: while one replica does), 503 in the
OpenAI error shape otherwise; and the watch that ends the server when its engine has died.

Engine death ends the process (exit status 3) rather than restarting the engine in place: the
supervisor that runs the server (Docker's restart policy, Kubernetes, systemd) already restarts
processes, with back-off and a record of each restart, while an in-place restart would have to
rebuild, in a process whose engine just crashed, all that start-up built (the engine, adapters,
verifiers, metrics registrations) and would hide a crash loop from whoever watches. This is what
vLLM's own server does. Until the process is gone, /health answers 503 and requests in flight
get 503 at once (vLLM fails them with EngineDeadError when its engine core dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, Request, Response

from engine.protocol import Engine, EngineDeadError, EngineUnavailable
from server.errors import APIError, to_api_error

log = logging.getLogger(__name__)
router = APIRouter()
ENGINE_DEAD_EXIT_STATUS = 3


@router.get("/health")
async def health(request: Request) -> Response:
    try:
        await request.app.state.engine.check_health()
    except Exception as exc:
        error = to_api_error(exc)
        raise APIError(503, error.message, code="engine_unhealthy",
                       headers=error.headers) from exc
    return Response(status_code=200)


@contextlib.asynccontextmanager
async def watching(app: FastAPI, engine: Engine, interval_s: float) -> AsyncIterator[None]:
    """Checks the engine every `interval_s` while the app runs; when it has died, marks the app
    (`app.state.engine_failed`, read by `python -m server` for its exit status) and asks the
    server to shut down (`app.state.request_shutdown`, else SIGTERM): in-flight requests finish
    (with 503), then it exits."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await engine.check_health()
            except EngineUnavailable:  # a fleet with no replica up now: they are probed back
                continue
            except EngineDeadError as exc:
                log.critical("the engine has died (%s); shutting down for the supervisor to "
                             "restart the server", exc)
                app.state.engine_failed = True
                stop = getattr(app.state, "request_shutdown", None)
                stop() if stop is not None else os.kill(os.getpid(), signal.SIGTERM)
                return
            except Exception:  # a check that failed for another reason is not a verdict
                log.exception("engine health check failed")

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
