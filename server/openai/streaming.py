"""Server-sent events in the OpenAI format and client-disconnect handling."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from server.errors import error_body, to_api_error

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def event_stream(chunks: AsyncIterator[BaseModel | dict],
                 headers: dict[str, str] | None = None) -> StreamingResponse:
    """`data: <json>` per chunk, then `data: [DONE]`. An error after the headers are sent can only
    be reported in-band, as one more event in the OpenAI error shape."""

    async def events() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                body = chunk if isinstance(chunk, dict) else chunk.model_dump(mode="json")
                yield f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
        except Exception as exc:  # CancelledError (client gone) is not an Exception: it propagates
            yield f"data: {json.dumps(error_body(to_api_error(exc)))}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", **(headers or {})})


def with_cancellation(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | None]]:
    """Cancels `handler` when the client disconnects, which aborts its engine request.

    Needed for non-streaming requests: nothing else notices a client leaving while the engine
    works. The handler must take the `Request` as keyword `raw_request`. (vLLM's pattern, with
    one difference: the handler runs in the request's own task, which a watcher cancels, rather
    than in a task of its own awaited beside the watcher. Each hop between tasks waits for the
    event loop's turn, and under a burst of hundreds a turn took 0.1-0.7 s: two hops fewer is
    a 429, or any answer, sent that much sooner.)
    """

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        request: Request = kwargs["raw_request"]  # type: ignore[assignment]
        task = asyncio.current_task()
        assert task is not None
        state = {"done": False, "left": False}

        def on_disconnect(watch: asyncio.Task) -> None:
            # a done callback runs a turn after the watcher ends: the handler may be done by then
            if state["done"] or watch.cancelled():
                return
            watch.exception()  # retrieved; a watcher that failed counts as the client gone
            state["left"] = True
            task.cancel()

        watch = asyncio.create_task(_disconnected(request))
        watch.add_done_callback(on_disconnect)
        try:
            return await handler(*args, **kwargs)
        except asyncio.CancelledError:
            if not state["left"]:
                raise  # cancelled from outside (shutdown): not ours to swallow
            log.info("client disconnected; request cancelled")
            return None
        finally:
            state["done"] = True
            watch.cancel()
            if state["left"]:
                task.uncancel()  # ours, and handled: the request's task goes on to answer nothing

    return wrapper


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
