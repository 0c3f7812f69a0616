"""Rejects requests whose headers are larger than a limit with 431, before any route runs."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import APIError, error_response


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:  # ": " and CRLF per line, as on the wire
                error = APIError(431, f"request headers are {size} bytes, over the server's "
                                      f"limit of {self.max_bytes}; send fewer or shorter ones",
                                 code="request_header_fields_too_large")
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
