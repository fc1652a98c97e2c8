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
    ├── UnsupportedMediaTypeError unsupported_media_type UNSUPPORTED_MEDIA_TYPE
    ├── InsufficientStorageError  insufficient_storage INSUFFICIENT_STORAGE (a full disk)
    ├── RateLimitedError          rate_limited      RATE_LIMITED
    ├── ComposeError              compose_error     COMPOSE_FAILED   (carries argv, rc, stderr)
    ├── EngineError               engine_error      ENGINE_FAILED
    │   └── EngineUnavailableError unavailable      ENGINE_UNAVAILABLE (carries retry_after)
    ├── StoreBusyError            unavailable       DATABASE_BUSY (another writer holds the lock)
    └── StorageIOError            io_error          IO_FAILED

An error that carries ``retry_after`` (seconds) tells the client when to try again.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Mapping, Sequence
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
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after


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


class UnsupportedMediaTypeError(DockyardError):
    kind = "unsupported_media_type"
    default_code = "UNSUPPORTED_MEDIA_TYPE"


class InsufficientStorageError(DockyardError):
    """The disk under DATA_DIR (or the database) is full; freeing space fixes it."""

    kind = "insufficient_storage"
    default_code = "INSUFFICIENT_STORAGE"


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, or SQLite's "database or disk is full", anywhere in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full(exc: BaseException | None = None) -> InsufficientStorageError:
    return InsufficientStorageError(
        "the disk that holds Dockyard's data is full; nothing was changed",
        details={"hint": "free space under DATA_DIR and try again"},
    )


class RateLimitedError(DockyardError):
    kind = "rate_limited"
    default_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)


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
    """The engine cannot be reached (down, restarting, or its socket closed on us)."""

    kind = "unavailable"
    default_code = "ENGINE_UNAVAILABLE"
    RETRY_AFTER: ClassVar[int] = 5

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("retry_after", self.RETRY_AFTER)
        super().__init__(message, **kw)


class StoreBusyError(DockyardError):
    """The database stayed locked by another writer (a backup, a ``sqlite3`` shell) past
    the busy timeout; nothing was written, and the same request may be sent again."""

    kind = "unavailable"
    default_code = "DATABASE_BUSY"
    RETRY_AFTER: ClassVar[int] = 5

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("retry_after", self.RETRY_AFTER)
        super().__init__(message, **kw)


class StorageIOError(DockyardError):
    kind = "io_error"
    default_code = "IO_FAILED"


SECRET_FIELDS = frozenset({"password", "current_password", "new_password", "token", "secret"})


def invalid_input(errors: Sequence[Mapping[str, Any]]) -> ValidationError:
    """pydantic's error list (a request body, query, or a merged spec) as our 400.

    The one translation of pydantic's errors: the API's request validation and the
    domain's own parsing both come through here."""
    first: Mapping[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = _field_path(first)
    field = ".".join(loc)
    kind = first.get("type", "")
    summary = [{"field": ".".join(_field_path(e)), "message": e.get("msg", "")} for e in errors]
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
        provided = None  # the field says where; a large value is not echoed back
    if loc and loc[-1] in SECRET_FIELDS:
        provided = None  # a password is never echoed back, not even a wrong one
    if isinstance(provided, bytes | bytearray):
        provided = None  # a body that was not parsed (not JSON)
    if isinstance(provided, float) and not math.isfinite(provided):
        provided = str(provided)  # NaN and Infinity are not JSON
    return ValidationError(
        f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg")),
        code=code,
        details={"field": field, "provided": provided, "errors": summary},
    )


def _field_path(error: Mapping[str, Any]) -> list[str]:
    """Where the error is, without FastAPI's leading ``body``."""
    return [str(p) for p in error.get("loc", ()) if p != "body"]
