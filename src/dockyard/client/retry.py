"""When to retry a request, and how long to wait first (pure; both clients use it).

Only answers that say "try again" are retried - 429 ``rate_limited`` and 503
``unavailable`` - and only for calls that are safe to repeat: GET, HEAD, PUT and DELETE,
or a POST that carries an ``Idempotency-Key`` (the SDK sets one on every create, so the
server answers a repeat with the first result). ``Retry-After`` is honoured (capped);
without it the wait grows exponentially with jitter.
"""

from __future__ import annotations

import random
from time import time
from typing import NamedTuple

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})


class RetryPolicy(NamedTuple):
    """``attempts`` in all (1: never retry); waits of ``base * 2**n`` up to ``cap`` seconds,
    and a server's ``Retry-After`` up to ``max_retry_after``. (A NamedTuple, not a
    dataclass: ``dataclasses`` costs the command line ~15 ms of start-up.)"""

    attempts: int = 4
    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, status: int | None, retry_after: str | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None not to retry.
        ``attempt`` counts from 1; ``status`` None means no answer (a connection error)."""
        if attempt >= self.attempts:
            return None
        if status is not None and status not in RETRY_STATUSES:
            return None
        told = parse_retry_after(retry_after)
        if told is not None:
            return min(told, self.max_retry_after)
        backoff: float = min(self.cap, self.base * 2 ** (attempt - 1))
        return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not secrecy


def may_retry(method: str, headers: dict[str, str]) -> bool:
    """Whether repeating the call cannot do twice what was asked once."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return any(k.lower() == "idempotency-key" for k in headers)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # only for the rare date form: ~20 ms

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time())
