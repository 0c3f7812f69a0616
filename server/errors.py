"""The one error mapper: every failure leaves the server in the OpenAI error shape
`{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.errors import AdapterError
from engine.protocol import EngineDeadError, EngineUnavailable, InvalidEngineRequest

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _type_for(status)
        self.headers = headers or {}


def bad_request(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, param=param)


def model_not_found(model: str, available: Iterable[str]) -> APIError:
    return APIError(404, f"The model `{model}` does not exist. Available models: "
                         f"{', '.join(available)}", param="model", code="model_not_found")


def error_body(error: APIError) -> dict:
    return {"error": {"message": error.message, "type": error.type, "param": error.param,
                      "code": error.code}}


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)


def to_api_error(exc: Exception) -> APIError:
    """Maps anything raised while serving a request to what the client should see."""
    match exc:
        case APIError():
            return exc
        case AdapterError():
            return APIError(exc.status_code, exc.message, param=exc.param, code=exc.code)
        case InvalidEngineRequest():
            return APIError(exc.status, str(exc))
        case EngineUnavailable():
            return APIError(503, str(exc), code="engine_unavailable",
                            headers={"Retry-After": str(exc.retry_after_s)})
        case EngineDeadError():
            return APIError(503, f"the engine is not running: {exc}", code="engine_dead")
        case NotImplementedError():
            return APIError(501, str(exc) or "not implemented")
        case _:
            log.exception("unhandled error", exc_info=exc)
            return APIError(500, "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if exc.errors()[0]["loc"] == ("body",) and request.method == "POST" \
                and not _is_json(content_type):
            # FastAPI parses only a JSON content type; anything else reached the model as bytes
            return error_response(APIError(
                415, f"the body must be JSON sent with Content-Type: application/json (got "
                     f"{content_type or 'no Content-Type'})", code="unsupported_media_type"))
        return error_response(_from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return error_response(APIError(exc.status_code, message, code=code))

    async def mapped(_: Request, exc: Exception) -> JSONResponse:
        return error_response(to_api_error(exc))

    for known in (APIError, AdapterError, InvalidEngineRequest, EngineDeadError,
                  NotImplementedError):
        app.add_exception_handler(known, mapped)
    # Anything else is a bug: Starlette answers with this handler, then re-raises to the server log.
    app.add_exception_handler(Exception, mapped)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _from_validation(exc: RequestValidationError) -> APIError:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return bad_request(f"request body is not valid JSON: {first.get('ctx', {}).get('error')}")
    # loc is ("body", field, ...); a missing body is just ("body",).
    path = [str(part) for part in first["loc"][1:]]
    # Union members add their type name to loc (e.g. "str"); keep only the request's own keys.
    path = [p for p in path if p not in _TYPE_TAGS]
    # a check of the whole body names the field it found wrong (ctx "param")
    path += [str(first["ctx"]["param"])] if "param" in first.get("ctx", {}) else []
    param = ".".join(path) or None
    where = f"{param}: " if param else "request body: "
    return bad_request(where + first["msg"], param=param)


_TYPE_TAGS = {"str", "int", "float", "bool", "list[int]", "list[str]", "list[list[int]]",
              "list[TextPart]"}


def _type_for(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status < 500:
        return "invalid_request_error"
    return {501: "not_implemented_error", 503: "service_unavailable_error",
            504: "timeout_error"}.get(status, "server_error")
