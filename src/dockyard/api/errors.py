"""The one place where errors become answers (SPEC §9).

``problem`` builds the error body; it is used for every HTTP error (the exception
handlers below), the middleware's last-resort 500, and the WebSocket terminal's
refusals before accept, its ``error`` frames and its close codes. ``KIND_STATUS`` is
the one kind -> status table.
"""

from __future__ import annotations

import json
import traceback
from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from dockyard.domain.containers.policy import HOST_ACCESS_FIELDS, host_access_denied
from dockyard.errors import (
    AuthError,
    DockyardError,
    ValidationError,
    disk_full,
    invalid_input,
    is_disk_full,
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
    "unsupported_media_type": 415,
    "state_error": 422,
    "rate_limited": 429,
    "compose_error": 500,
    "engine_error": 502,
    "unavailable": 503,
    "io_error": 500,
    "insufficient_storage": 507,
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
    415: "unsupported_media_type",
    422: "state_error",
    429: "rate_limited",
}
# Kinds that mean Dockyard or what is below it failed: worth a line in the log.
_OUR_FAULT = frozenset(
    {
        "compose_error",
        "engine_error",
        "unavailable",
        "io_error",
        "insufficient_storage",
        "internal_error",
    }
)

# WebSocket close codes (RFC 6455): the terminal's refusals and failures.
WS_REFUSED = 1008  # policy: the session may not be opened, or was revoked
WS_BAD_FRAME = 1007  # the client sent a frame outside the protocol
WS_FAILED = 1011  # the container or the engine failed


def status_of(kind: str) -> int:
    return KIND_STATUS.get(kind, 500)


def problem(
    kind: str,
    code: str,
    message: str,
    *,
    request_id: str | None,
    status: int | None = None,
    details: dict[str, Any] | None = None,
    exc: BaseException | None = None,
    dev_mode: bool = False,
) -> dict[str, Any]:
    """SPEC §9's error body; ``stacktrace`` only in DEV_MODE."""
    body: dict[str, Any] = {
        "error": kind,
        "code": code,
        "message": message,
        "status": status if status is not None else status_of(kind),
        "request_id": request_id,
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "details": details or {},
    }
    if exc is not None and dev_mode:
        body["stacktrace"] = "".join(traceback.format_exception(exc))
    return body


def note(state: State | dict[str, Any], kind: str, code: str) -> None:
    """Remember the error for the action log (``error`` is the kind, ``code`` the code)."""
    if isinstance(state, dict):
        state.update(error_kind=kind, error_code=code)
    else:
        state.error_kind, state.error_code = kind, code


def _response(conn: Request | WebSocket, exc: DockyardError) -> JSONResponse:
    status = status_of(exc.kind)
    note(conn.state, exc.kind, exc.code)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = 'Basic realm="dockyard"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = problem(
        exc.kind,
        exc.code,
        exc.message,
        request_id=getattr(conn.state, "request_id", None),
        status=status,
        details=exc.details,
        exc=exc,
        dev_mode=conn.app.state.settings.dev_mode,
    )
    return JSONResponse(body, status_code=status, headers=headers)


def render(request: Request, exc: DockyardError) -> JSONResponse:
    return _response(request, exc)


async def send_500(send: Send, request_id: str, exc: Exception, *, dev_mode: bool) -> None:
    """The last resort for an unexpected exception: no text of it, the request id quoted."""
    body = problem(
        "internal_error",
        "INTERNAL",
        f"internal error; quote request id {request_id}",
        request_id=request_id,
        exc=exc,
        dev_mode=dev_mode,
    )
    await _send_body(send, 500, body)


async def send_error(
    send: Send, state: dict[str, Any], exc: DockyardError, *, dev_mode: bool
) -> None:
    """An error answered below the application (the request's body rules)."""
    note(state, exc.kind, exc.code)
    status = status_of(exc.kind)
    body = problem(
        exc.kind,
        exc.code,
        exc.message,
        request_id=state.get("request_id"),
        status=status,
        details=exc.details,
        dev_mode=dev_mode,
    )
    await _send_body(send, status, body, close=True)


async def _send_body(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    """An error body sent straight through ASGI (below the exception handlers)."""
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# -- the WebSocket terminal ----------------------------------------------------------


async def ws_refuse(websocket: WebSocket, exc: DockyardError) -> None:
    """Refuse before accept: the HTTP status and body when the server can send them,
    else a bare close."""
    try:
        await websocket.send_denial_response(_response(websocket, exc))
    except RuntimeError:  # the server has no denial-response extension
        await websocket.close(code=WS_REFUSED)


def ws_error_frame(websocket: WebSocket, exc: DockyardError) -> dict[str, Any]:
    """An ``error`` frame: the same body as over HTTP, under ``error``."""
    note(websocket.state, exc.kind, exc.code)
    body = problem(
        exc.kind,
        exc.code,
        exc.message,
        request_id=getattr(websocket.state, "request_id", None),
        details=exc.details,
    )
    return {"type": "error", "error": body}


def ws_close_code(exc: DockyardError) -> int:
    """How a session that failed mid-way closes: a bad client frame, else a failure."""
    return WS_BAD_FRAME if isinstance(exc, ValidationError) else WS_FAILED


# -- HTTP exception handlers ------------------------------------------------------------


def from_request_validation(exc: RequestValidationError) -> DockyardError:
    errors = exc.errors()
    if errors and errors[0].get("type") == "extra_forbidden":
        loc = [str(p) for p in errors[0].get("loc", ()) if p != "body"]
        if loc and loc[-1] in HOST_ACCESS_FIELDS:
            return host_access_denied(loc[-1])
    return invalid_input(errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(DockyardError)
    async def _dockyard(request: Request, exc: DockyardError) -> JSONResponse:
        if exc.kind in ("io_error", "internal_error") and is_disk_full(exc):
            exc = disk_full(exc)
        if exc.kind in _OUR_FAULT:
            log.warning(
                "request.failed",
                code=exc.code,
                kind=exc.kind,
                request_id=getattr(request.state, "request_id", None),
            )
        return render(request, exc)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        if not is_disk_full(exc):
            raise exc  # the middleware's last resort: a 500 that quotes the request id
        return await _dockyard(request, disk_full(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, from_request_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KIND.get(exc.status_code, "validation_error")
        code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, kind.upper()
        )
        note(request.state, kind, code)
        body = problem(
            kind,
            code,
            str(exc.detail),
            request_id=getattr(request.state, "request_id", None),
            status=exc.status_code,
        )
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
