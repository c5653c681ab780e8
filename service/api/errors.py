"""Errors as JSON: `{"error": ..., "code": ...}` everywhere, remove.bg's
`{"errors": [{"title": ...}]}` on its compatible route."""
from __future__ import annotations

import logging
import math
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InvalidOptions, QueueFull, ServiceError

log = logging.getLogger("cutout.api")

REMOVEBG_PREFIX = "/v1.0/"  # removebg and account


def invalid_options(exc: ValidationError) -> InvalidOptions:
    problems = []
    for error in exc.errors(include_url=False, include_context=False):
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors(include_url=False, include_context=False)]
    return InvalidOptions("invalid options: " + "; ".join(problems), detail)


def error_response(exc: ServiceError) -> JSONResponse:
    body: dict = {"error": exc.message, "code": exc.code}
    if isinstance(exc, InvalidOptions) and exc.detail:
        body["detail"] = exc.detail
    return JSONResponse(body, status_code=exc.status, headers=exc.headers())


def removebg_error_response(exc: ServiceError) -> JSONResponse:
    """remove.bg's shape and statuses: invalid parameters are 400 there, and a full queue is
    429 with its rate-limit headers (its clients retry on 429, not on 503)."""
    status, code, headers = exc.status, exc.code, exc.headers()
    if isinstance(exc, InvalidOptions):
        status = 400
    if isinstance(exc, QueueFull):
        status, code = 429, "rate_limit_exceeded"
        headers.update({"X-RateLimit-Limit": str(exc.capacity), "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(math.ceil(time.time()) + exc.retry_after_s)})
    return JSONResponse({"errors": [{"title": exc.message, "code": code}]},
                        status_code=status, headers=headers)


def response_for_path(path: str, exc: ServiceError) -> JSONResponse:
    """Middleware errors (before routing) in the shape the route's clients expect."""
    if path.startswith(REMOVEBG_PREFIX):
        return removebg_error_response(exc)
    return error_response(exc)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return response_for_path(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        error = InvalidOptions(f"invalid request: {problems}",
                               [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()])
        return response_for_path(request.url.path, error)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ServiceError(str(exc.detail))
        error.status, error.code = exc.status_code, f"http_{exc.status_code}"
        response = response_for_path(request.url.path, error)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return response_for_path(request.url.path, ServiceError("internal server error"))
