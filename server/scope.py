"""Opens the engine's request scope (engine/scope.py) around every HTTP request, so that a remote
engine sends all engine calls of the request (a search's steps and rollouts, its PRM and ORM
scoring) to one replica. Pure ASGI, so a streamed response's body runs inside the scope too."""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.scope import RequestScope, request_scope


class RequestScopeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_scope(RequestScope(key=uuid.uuid4().hex)):
            await self.app(scope, receive, send)
