"""Optional bearer-token check for the /v1 routes."""

from __future__ import annotations

import secrets

from fastapi import Request

from server.errors import APIError


async def require_api_key(request: Request) -> None:
    _check_bearer(request, request.app.state.settings.api_key, "API key")


async def require_admin_key(request: Request) -> None:
    """Adapter management: the admin key when one is set, else the ordinary API key."""
    settings = request.app.state.settings
    if settings.admin_api_key is not None:
        _check_bearer(request, settings.admin_api_key, "admin API key")
    else:
        _check_bearer(request, settings.api_key, "API key")


def _check_bearer(request: Request, expected: str | None, what: str) -> None:
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise APIError(401, f"missing or wrong {what}; send `Authorization: Bearer <key>`",
                       code="invalid_api_key")
