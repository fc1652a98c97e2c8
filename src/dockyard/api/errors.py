"""The one place where errors become HTTP responses (SPEC §9's error body)."""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard.domain.containers.policy import HOST_ACCESS_FIELDS, host_access_denied
from dockyard.errors import (
    AuthError,
    DockyardError,
    RateLimitedError,
    ValidationError,
)

log = structlog.get_logger("dockyard.api")

KIND_STATUS: dict[str, int] = {
    "auth_error": 401,
    "forbidden": 403,
    "validation_error": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "timeout": 408,
    "payload_too_large": 413,
    "state_error": 422,
    "rate_limited": 429,
    "compose_error": 500,
    "engine_error": 502,
    "io_error": 500,
    "internal_error": 500,
}
_HTTP_KIND = {
    401: "auth_error",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "state_error",
    429: "rate_limited",
}


def error_body(
    request: Request,
    kind: str,
    code: str,
    message: str,
    status: int,
    details: dict[str, Any] | None = None,
    exc: BaseException | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": kind,
        "code": code,
        "message": message,
        "status": status,
        "request_id": getattr(request.state, "request_id", None),
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "details": details or {},
    }
    if exc is not None and request.app.state.settings.dev_mode:
        body["stacktrace"] = "".join(traceback.format_exception(exc))
    return body


def render(request: Request, exc: DockyardError) -> JSONResponse:
    status = KIND_STATUS.get(exc.kind, 500)
    request.state.error_code = exc.code
    headers: dict[str, str] = {}
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = 'Basic realm="dockyard"'
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    body = error_body(request, exc.kind, exc.code, exc.message, status, exc.details, exc)
    return JSONResponse(body, status_code=status, headers=headers)


def from_request_validation(exc: RequestValidationError) -> ValidationError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc)
    kind = first.get("type", "")
    if kind == "extra_forbidden" and loc and loc[-1] in HOST_ACCESS_FIELDS:
        return host_access_denied(loc[-1])
    summary = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
        }
        for e in errors
    ]
    if kind == "missing":
        return ValidationError(
            f"{field or 'body'} is required",
            code=f"MISSING_{(loc[-1] if loc else 'BODY').upper()}",
            details={"field": field, "provided": None, "errors": summary},
        )
    if kind == "json_invalid":
        return ValidationError(
            "the body is not valid JSON", code="INVALID_JSON", details={"errors": summary}
        )
    code = "UNKNOWN_FIELD" if kind == "extra_forbidden" else "INVALID_FIELD"
    provided = first.get("input") if kind != "extra_forbidden" else None
    if isinstance(provided, dict | list) or (isinstance(provided, str) and len(provided) > 200):
        provided = None
    return ValidationError(
        f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg")),
        code=code,
        details={"field": field, "provided": provided, "errors": summary},
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DockyardError)
    async def _dockyard(request: Request, exc: DockyardError) -> JSONResponse:
        if exc.kind in ("compose_error", "engine_error", "io_error", "internal_error"):
            log.warning(
                "request.failed",
                code=exc.code,
                kind=exc.kind,
                request_id=getattr(request.state, "request_id", None),
            )
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, from_request_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KIND.get(exc.status_code, "validation_error")
        code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, kind.upper()
        )
        request.state.error_code = code
        body = error_body(request, kind, code, str(exc.detail), exc.status_code)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
