"""The /ui page: static files from the package (no build chain) that draw a search as it runs,
from the chat stream's `reasoning_trace` chunks (docs/ui.md). Off with `--no-ui`.

When API keys are set, the page is behind them like every other route. A browser cannot send a
bearer key when it navigates, so the page also takes the key as HTTP Basic credentials (any
user name, the key as password): the browser asks for it once, and the page gets it back in a
meta tag of its HTML (never cached) to send as a bearer key on its API calls."""

from __future__ import annotations

import base64
import binascii
import html
from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from server.errors import APIError
from search.registry import STRATEGIES

router = APIRouter()

# Nothing inline, nothing from elsewhere: the page's own script and style, calls to this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' blob: data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
ASSETS = {"ui.js": "text/javascript", "ui.css": "text/css"}
KEY_PLACEHOLDER = "{{api_key}}"


def _static(name: str) -> str:
    return resources.files("server.ui").joinpath("static", name).read_text(encoding="utf-8")


async def page_key(request: Request) -> str:
    """The API key the caller presented (bearer, or Basic's password); "" when no key is set.
    A 401 that makes a browser ask for it otherwise."""
    if not request.app.state.settings.ui:
        raise APIError(404, "the /ui page is off on this server (--no-ui)", code="not_found")
    tenants = request.app.state.tenants
    if not tenants.required:
        return ""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = token
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(token, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if key and tenants.identify(f"Bearer {key}") is not None:
        return key
    raise APIError(401, "missing or wrong API key: give it as the password your browser asks "
                        "for, or send `Authorization: Bearer <key>`", code="invalid_api_key",
                   headers={"WWW-Authenticate": 'Basic realm="Deliberate", charset="UTF-8"'})


@router.get("/ui", include_in_schema=False)
async def page(key: str = Depends(page_key)) -> HTMLResponse:
    text = _static("index.html").replace(KEY_PLACEHOLDER, html.escape(key, quote=True))
    return HTMLResponse(text, headers=HEADERS)


@router.get("/ui/config", include_in_schema=False)
async def config(request: Request, key: str = Depends(page_key)) -> JSONResponse:
    """What the form offers: the verifiers this server has, the search's default weights, the
    strategies."""
    settings = request.app.state.settings
    verify = getattr(request.app.state, "verify_service", None)
    verifiers = verify.registry.names() if verify is not None else []
    return JSONResponse({"verifiers": verifiers, "search_verifiers": settings.search_verifiers,
                         "strategies": ["auto", *sorted(STRATEGIES)],
                         "budget_tokens": settings.max_search_tokens},
                        headers=HEADERS)


@router.get("/ui/{name}", include_in_schema=False)
async def asset(name: str, key: str = Depends(page_key)) -> Response:
    if name not in ASSETS:
        raise APIError(404, f"no /ui/{name}: the page has {sorted(ASSETS)}", code="not_found")
    return Response(_static(name), media_type=ASSETS[name], headers=HEADERS)
