"""Opens an engine affinity scope per HTTP request (engine/affinity.py): a remote engine sends
every engine call of the request (a search's steps and rollouts, its PRM and ORM scoring) to
one replica. Pure ASGI, so a streamed response's body runs inside the scope too."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.affinity import request_scope


class AffinityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_scope():
            await self.app(scope, receive, send)
