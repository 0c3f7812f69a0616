"""Optional bearer-token check for the /v1 routes."""

from __future__ import annotations

import secrets

from fastapi import Request

from server.errors import APIError


async def require_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise APIError(401, "missing or wrong API key; send `Authorization: Bearer <key>`",
                       code="invalid_api_key")
