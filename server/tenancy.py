"""Who is calling: the API key a request presents, resolved to a tenant, and the scope the engine
sees for the request (its prefix-cache salt).

Keys are compared in constant time: the presented token's SHA-256 is compared with every
configured key's digest, all of them, with `hmac.compare_digest`, so neither the position of
a wrong byte nor which key matched shows in the time taken.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.scope import RequestScope, request_scope

# A key's prefix-cache salt is an HMAC of this message under the key: the same on every server
# in front of a shared fleet, different per key, and no way back to the key.
_SALT_MESSAGE = b"deliberate prefix-cache salt v1"
DEFAULT_TENANT = "default"  # the name of the single `api_key`


@dataclass(frozen=True)
class Tenant:
    name: str
    cache_salt: str


class Tenants:
    def __init__(self, keys: Mapping[str, str]) -> None:
        """`keys`: tenant name -> API key."""
        self._by_digest = [(_digest(key), Tenant(name, _salt(key))) for name, key in keys.items()]

    @classmethod
    def from_settings(cls, settings) -> Tenants:
        keys = dict(settings.api_keys)
        empty = sorted(name for name, key in keys.items() if not key)
        if empty:
            raise ValueError(f"--api-keys: the key of {empty} is empty; give each tenant a key")
        if settings.api_key:  # an empty DELIBERATE_API_KEY (compose's default) sets no key
            keys.setdefault(DEFAULT_TENANT, settings.api_key)
        return cls(keys)

    @property
    def required(self) -> bool:
        return bool(self._by_digest)

    def identify(self, authorization: str | None) -> Tenant | None:
        """The tenant whose key is the bearer token of this Authorization header, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        presented = _digest(token)
        found = None
        for digest, tenant in self._by_digest:  # every key, whatever matched: constant time
            if hmac.compare_digest(presented, digest) and scheme.lower() == "bearer":
                found = tenant
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _salt(key: str) -> str:
    return hmac.new(key.encode("utf-8", "surrogatepass"), _SALT_MESSAGE, "sha256").hexdigest()


_tenant: ContextVar[Tenant | None] = ContextVar("deliberate_tenant", default=None)


def current_tenant() -> Tenant | None:
    """The tenant of the request being served (None without API keys, or a wrong key)."""
    return _tenant.get()


class TenancyMiddleware:
    """Resolves the caller's tenant once, before routing, and runs the whole request (streamed
    responses included, and every task it starts) inside its engine scope. Refusing a request
    without a valid key is the routes' `require_api_key`; this only identifies."""

    def __init__(self, app: ASGIApp, tenants: Tenants) -> None:
        self.app = app
        self.tenants = tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        tenant = self.tenants.identify(authorization) if self.tenants.required else None
        token = _tenant.set(tenant)
        try:
            salt = tenant.cache_salt if tenant is not None else None
            with request_scope(RequestScope(key=uuid.uuid4().hex, cache_salt=salt)):
                await self.app(scope, receive, send)
        finally:
            _tenant.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
