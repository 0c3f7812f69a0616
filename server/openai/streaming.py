"""Server-sent events in the OpenAI format and client-disconnect handling."""

from __future__ import annotations

import asyncio
import contextlib
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
    works. The handler must take the `Request` as keyword `raw_request`. (vLLM's pattern.)
    """

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        request: Request = kwargs["raw_request"]  # type: ignore[assignment]
        work = asyncio.create_task(handler(*args, **kwargs))
        watch = asyncio.create_task(_disconnected(request))
        done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            watch.cancel()
            return work.result()
        work.cancel()
        # Wait for the cancellation to unwind, so the engine request is aborted before we return.
        with contextlib.suppress(asyncio.CancelledError):
            await work
        log.info("client disconnected; request cancelled")
        return None

    return wrapper


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
