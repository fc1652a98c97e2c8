"""Outgoing webhooks: the values and the pure rules (matching, signing, backoff).

A webhook's ``events`` are type patterns: an exact type (``build.failed``), a family
(``container.*``) or ``*``; none at all means every event. Each delivery body is signed
as Stripe does it: ``X-Dockyard-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret,
"<ts>.<body>")>``, so a receiver can refuse a replay older than a few minutes. Retries
wait with exponential backoff and full jitter (AWS architecture blog, "Exponential
Backoff And Jitter"): a uniform draw below ``min(cap, base * 2**(attempt - 1))``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dockyard.domain.observe.event_types import EVENT_TYPES
from dockyard.domain.observe.events import Event
from dockyard.errors import ValidationError

TEST_TYPE = "webhook.test"
FAILED_TYPE = "webhook.delivery_failed"
MAX_PATTERNS = 64
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
_PATTERN = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Webhook:
    """A row of ``webhooks``: ``secret`` is sealed (bound to ``context``)."""

    id: str
    owner: str
    url: str
    events: tuple[str, ...]
    secret: bytes
    active: bool
    created_at: datetime

    @property
    def context(self) -> bytes:
        return f"webhook\0{self.id}\0{self.owner}".encode()


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook (``X-Dockyard-Delivery`` is ``id``); ``body`` is the
    exact JSON that is signed and sent, every attempt."""

    id: str
    webhook_id: str
    event_seq: int | None
    event_type: str
    body: str
    created_at: datetime
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None

    @property
    def seq(self) -> int:
        """For cursors: creation times are unique per service (``Stamps``)."""
        return micros(self.created_at)


@dataclass(frozen=True)
class Attempt:
    """What one POST got: a status code, or why there was none (an error kind)."""

    status_code: int | None
    error: str | None = None  # timeout | connect | url_refused | redirect | status | …

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Outcome:
    """A delivery's state after an attempt (or a redeliver)."""

    delivery_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass
class DeliveryLimits:
    timeout: float
    retry_for: float
    max_in_flight: int
    per_webhook: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 3600.0
    user_agent: str = "Dockyard-Webhooks/1"


class WebhookSender(Protocol):
    """Sends to a client-given URL under the SSRF rules of ``data_url``."""

    async def check(self, url: str, field: str) -> None:
        """Refuse (``ValidationError``) a URL that is malformed or not public."""
        ...

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt: ...


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated event patterns (``ValidationError`` names a bad one)."""
    out: list[str] = []
    for raw in patterns:
        pattern = raw.strip()
        known = EVENT_TYPES | {TEST_TYPE}
        family = pattern[:-1] if pattern.endswith(".*") else None
        valid = bool(_PATTERN.match(pattern)) and (
            pattern == "*"
            or pattern in known
            or (family is not None and any(t.startswith(family) for t in known))
        )
        if not valid:
            raise ValidationError(
                f"unknown event pattern {raw[:64]!r}",
                code="INVALID_EVENT_TYPE",
                details={"field": "events", "provided": raw[:64], "allowed": sorted(known)},
            )
        out.append(pattern)
    if len(out) > MAX_PATTERNS:
        raise ValidationError(
            f"at most {MAX_PATTERNS} event patterns",
            code="INVALID_FIELD",
            details={"field": "events", "limit": MAX_PATTERNS},
        )
    return tuple(dict.fromkeys(out))


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Does ``event_type`` match one of ``patterns`` (none: everything)?"""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Dockyard-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes) -> bool:
    """A receiver's check (docs/webhooks.md has the same in a few lines)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    expected = signature(secret, int(parts["t"]), body)
    return hmac.compare_digest(expected, header)


def backoff(attempt: int, *, base: float, cap: float, draw: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, …): full jitter
    below ``min(cap, base * 2**(attempt - 1))``; ``draw`` in [0, 1) fixes the jitter."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 60))
    return ceiling * (random.random() if draw is None else draw)  # noqa: S311 (jitter)


def after_failure(
    delivery: Delivery, attempt: Attempt, now: datetime, limits: DeliveryLimits
) -> Outcome:
    """The next state after a failed attempt: retried later, or given up for good once
    ``retry_for`` has passed since the delivery was made (a last try at that moment)."""
    attempts = delivery.attempts + 1
    give_up_at = delivery.created_at + timedelta(seconds=limits.retry_for)
    later = now + timedelta(
        seconds=backoff(attempts, base=limits.backoff_base, cap=limits.backoff_max)
    )
    status, next_at = PENDING, min(later, give_up_at)
    next_attempt: datetime | None = next_at
    if now >= give_up_at:
        status, next_attempt = FAILED, None
    return Outcome(
        delivery.id,
        status,
        attempts,
        next_attempt,
        attempt.status_code,
        attempt.error,
        None,
    )


def event_body(event: Event) -> str:
    """The JSON every webhook of this event receives (compact, keys sorted)."""
    return json.dumps(
        {
            "type": event.type,
            "seq": event.seq or None,
            "time": event.time.isoformat().replace("+00:00", "Z"),
            "source": event.source,
            "cuid": event.cuid,
            "owner": event.owner,
            "actor": event.actor,
            "details": event.details,
        },
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )
