"""Dockyard's exception tree.

Domain and adapter code raise these; ``api/errors.py`` alone turns a kind into an
HTTP status and renders SPEC §9's error body. Nothing here knows about HTTP.

    DockyardError                 kind        default code
    ├── AuthError                 auth_error        AUTH_REQUIRED
    ├── ForbiddenError            forbidden         FORBIDDEN
    ├── ValidationError           validation_error  INVALID_REQUEST
    ├── NotFoundError             not_found         NOT_FOUND
    ├── ConflictError             conflict          CONFLICT
    ├── DeadlineError             timeout           TIMEOUT
    ├── StateError                state_error       INVALID_STATE
    ├── PayloadTooLargeError      payload_too_large PAYLOAD_TOO_LARGE
    ├── RateLimitedError          rate_limited      RATE_LIMITED
    ├── ComposeError              compose_error     COMPOSE_FAILED   (carries argv, rc, stderr)
    ├── EngineError               engine_error      ENGINE_FAILED
    │   └── EngineUnavailableError engine_error     ENGINE_UNAVAILABLE
    └── StorageIOError            io_error          IO_FAILED
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class DockyardError(Exception):
    """Base of every error Dockyard raises on purpose."""

    kind: ClassVar[str] = "internal_error"
    default_code: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details or {}


class AuthError(DockyardError):
    kind = "auth_error"
    default_code = "AUTH_REQUIRED"


class ForbiddenError(DockyardError):
    kind = "forbidden"
    default_code = "FORBIDDEN"


class ValidationError(DockyardError):
    kind = "validation_error"
    default_code = "INVALID_REQUEST"


class NotFoundError(DockyardError):
    kind = "not_found"
    default_code = "NOT_FOUND"


class ConflictError(DockyardError):
    kind = "conflict"
    default_code = "CONFLICT"


class DeadlineError(DockyardError):
    kind = "timeout"
    default_code = "TIMEOUT"


class StateError(DockyardError):
    kind = "state_error"
    default_code = "INVALID_STATE"


class PayloadTooLargeError(DockyardError):
    kind = "payload_too_large"
    default_code = "PAYLOAD_TOO_LARGE"


class RateLimitedError(DockyardError):
    kind = "rate_limited"
    default_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ComposeError(DockyardError):
    """A Compose CLI call failed; carries what an operator needs to reproduce it."""

    kind = "compose_error"
    default_code = "COMPOSE_FAILED"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class EngineError(DockyardError):
    kind = "engine_error"
    default_code = "ENGINE_FAILED"


class EngineUnavailableError(EngineError):
    default_code = "ENGINE_UNAVAILABLE"


class StorageIOError(DockyardError):
    kind = "io_error"
    default_code = "IO_FAILED"
