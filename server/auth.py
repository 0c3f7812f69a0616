"""Bearer-token checks: the API keys (any tenant's) on every route that reaches the engine, the
admin key on adapter management and policy reloads."""

from __future__ import annotations

from fastapi import Request

from server.errors import APIError
from server.tenancy import Tenants, current_tenant


async def require_api_key(request: Request) -> None:
    """Passes when no key is configured, or when the caller presented one (TenancyMiddleware
    resolved it to a tenant)."""
    if request.app.state.tenants.required and current_tenant() is None:
        raise _unauthorized("API key")


async def require_admin_key(request: Request) -> None:
    """The admin key when one is set, else any API key."""
    admin = request.app.state.admin_keys
    if admin.required:
        if admin.identify(request.headers.get("authorization")) is None:
            raise _unauthorized("admin API key")
        return
    await require_api_key(request)


def admin_keys(settings) -> Tenants:
    return Tenants({} if settings.admin_api_key is None else {"admin": settings.admin_api_key})


def _unauthorized(what: str) -> APIError:
    return APIError(401, f"missing or wrong {what}; send `Authorization: Bearer <key>`",
                    code="invalid_api_key")
