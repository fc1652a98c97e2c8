"""What the observation endpoints share: points in time as clients write them, and bounds
on the streams that stay open (log follows, event follows)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from dockyard.domain.models import utcnow
from dockyard.errors import RateLimitedError, ValidationError

T = TypeVar("T")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)\Z")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
RETRY_AFTER = 5  # seconds a refused stream is told to wait


def parse_instant(raw: str | None, field: str, *, now: datetime | None = None) -> datetime | None:
    """A point in time: unix seconds (``1700000000.5``), RFC 3339 / ISO 8601
    (``2024-01-20T15:30:00Z``; no zone means UTC), or a duration before now (``90s``,
    ``10m``, ``2h``, ``1d``) as ``docker logs --since`` takes it."""
    if raw is None or raw == "":
        return None
    text = raw.strip()
    try:
        match = _DURATION.match(text)
        if match:
            ago = float(match.group(1)) * _UNITS[match.group(2)]
            return (now or utcnow()) - timedelta(seconds=ago)
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValidationError(
            f"{field} must be unix seconds, an ISO 8601 time or a duration such as 10m",
            code="INVALID_TIME",
            details={"field": field, "provided": raw[:64]},
        ) from None


class Lease:
    """One open session; released once, also when it is dropped without being closed."""

    def __init__(self, limiter: SessionLimiter | None, key: str | None) -> None:
        self._limiter = limiter
        self._key = key

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self._key)

    def __del__(self) -> None:
        self.release()


class SessionLimiter:
    """Counts open streaming sessions in total and per key (a container); refuses the
    one beyond a limit with ``rate_limited`` rather than letting them pile up."""

    def __init__(self, what: str, *, total: int, per_key: int | None = None) -> None:
        self.what = what
        self.total = total
        self.per_key = per_key
        self._open = 0
        self._by_key: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open

    def count(self, key: str) -> int:
        return self._by_key[key]

    def acquire(self, key: str | None = None) -> Lease:
        if self._open >= self.total:
            raise self._refuse("total", self.total)
        if key is not None and self.per_key is not None and self._by_key[key] >= self.per_key:
            raise self._refuse("container", self.per_key)
        self._open += 1
        if key is not None:
            self._by_key[key] += 1
        return Lease(self, key)

    def _refuse(self, scope: str, limit: int) -> RateLimitedError:
        where = "for this container" if scope == "container" else "in total"
        return RateLimitedError(
            f"too many {self.what} streams open {where} (at most {limit}); retry later",
            retry_after=RETRY_AFTER,
            code="TOO_MANY_STREAMS",
            details={"scope": scope, "limit": limit, "stream": self.what},
        )

    def _release(self, key: str | None) -> None:
        self._open -= 1
        if key is not None:
            self._by_key[key] -= 1
            if self._by_key[key] <= 0:
                del self._by_key[key]


class LeasedStream(Generic[T]):
    """An async iterator that holds a ``Lease`` while it is open: released when it ends,
    fails, is cancelled (the client left), is closed, or is dropped unclosed."""

    def __init__(
        self,
        source: AsyncIterator[T],
        lease: Lease | None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        self._lease = lease
        self._close = close
        self._closed = False

    def __aiter__(self) -> LeasedStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._source.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._lease is not None:
            self._lease.release()
        aclose = getattr(self._source, "aclose", None)
        with suppress(Exception):
            if aclose is not None:
                await aclose()
            if self._close is not None:
                await self._close()

    def __del__(self) -> None:
        if self._lease is not None:
            self._lease.release()
