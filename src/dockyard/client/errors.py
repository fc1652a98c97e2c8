"""The SDK's one exception tree. Every error the server answers (SPEC §9) becomes one of
these, carrying the body: ``kind``, ``code``, ``message``, ``status``, ``request_id`` and
``details``. Failures below HTTP (no connection, a timeout) are ``TransportError``.

    DockyardError
    ├── TransportError           no answer: connection refused, reset, timed out
    └── ApiError                 the server answered with an error body
        ├── ValidationFailed     400 validation_error
        ├── Unauthorized         401 auth_error
        ├── Forbidden            403 forbidden
        ├── NotFound             404 not_found
        ├── MethodNotAllowed     405 method_not_allowed
        ├── RequestTimeout       408 timeout
        ├── Conflict             409 conflict
        ├── PayloadTooLarge      413 payload_too_large
        ├── UnsupportedMediaType 415 unsupported_media_type
        ├── InvalidState         422 state_error
        ├── RateLimited          429 rate_limited (retry_after)
        ├── InsufficientStorage  507 insufficient_storage
        ├── Unavailable          503 unavailable (retry_after)
        └── ServerError          other 5xx: compose_error, engine_error, io_error, internal_error

Stdlib only: importing it costs nothing.
"""

from __future__ import annotations

from typing import Any


class DockyardError(Exception):
    """The root of every error the SDK raises."""


class TransportError(DockyardError):
    """The request got no answer (the cause is chained)."""


class ApiError(DockyardError):
    """An error answer of the API, with SPEC §9's body."""

    def __init__(self, body: dict[str, Any], *, status: int, retry_after: float | None = None):
        self.body = body
        self.status = status
        self.kind = str(body.get("error", "unknown"))
        self.code = str(body.get("code", "UNKNOWN"))
        self.message = str(body.get("message", ""))
        request_id = body.get("request_id")
        self.request_id = str(request_id) if request_id is not None else None
        details = body.get("details")
        self.details: dict[str, Any] = details if isinstance(details, dict) else {}
        self.retry_after = retry_after
        super().__init__(f"{status} {self.kind}/{self.code}: {self.message}")


class ValidationFailed(ApiError):
    """400: the request was refused for its content."""


class Unauthorized(ApiError):
    """401: missing, wrong, expired or revoked credentials."""


class Forbidden(ApiError):
    """403: the credential lacks a permission."""


class NotFound(ApiError):
    """404: no such resource (or it belongs to someone else)."""


class MethodNotAllowed(ApiError):
    """405."""


class RequestTimeout(ApiError):
    """408: a fetch or the request itself took too long."""


class Conflict(ApiError):
    """409: a port in use, a quota, an existing name, an image in use."""


class PayloadTooLarge(ApiError):
    """413."""


class UnsupportedMediaType(ApiError):
    """415."""


class InvalidState(ApiError):
    """422: an impossible transition, or a container that is not running."""


class RateLimited(ApiError):
    """429: too many requests or streams; ``retry_after`` says when to come back."""


class InsufficientStorage(ApiError):
    """507: the service's disk or database is full."""


class Unavailable(ApiError):
    """503: the engine or database is down or slow; ``retry_after`` says when to retry."""


class ServerError(ApiError):
    """Any other 5xx: Dockyard or its engine failed."""


KINDS: dict[str, type[ApiError]] = {
    "validation_error": ValidationFailed,
    "auth_error": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "method_not_allowed": MethodNotAllowed,
    "timeout": RequestTimeout,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "state_error": InvalidState,
    "rate_limited": RateLimited,
    "insufficient_storage": InsufficientStorage,
    "unavailable": Unavailable,
}
STATUSES: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidState,
    429: RateLimited,
    503: Unavailable,
    507: InsufficientStorage,
}


def error_for(status: int, body: Any, *, retry_after: float | None = None) -> ApiError:
    """The exception for an error answer: by the body's kind, else by the status (a body
    that is not SPEC §9's, e.g. from a proxy, still maps by status)."""
    if not isinstance(body, dict) or "error" not in body:
        body = {"error": "unknown", "code": f"HTTP_{status}", "message": str(body)[:500]}
    cls = KINDS.get(str(body.get("error")))
    if cls is None:
        cls = STATUSES.get(status, ServerError if status >= 500 else ApiError)
    return cls(body, status=status, retry_after=retry_after)
