"""GET /health: 200 while the engine answers (remote: while one replica does), 503 in the
OpenAI error shape otherwise."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.errors import APIError, to_api_error

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Response:
    try:
        await request.app.state.engine.check_health()
    except Exception as exc:
        error = to_api_error(exc)
        raise APIError(503, error.message, code="engine_unhealthy",
                       headers=error.headers) from exc
    return Response(status_code=200)
