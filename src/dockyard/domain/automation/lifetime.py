"""A container's timers as a client sets them (issue 11): ``idle_timeout`` (seconds of
no activity before a running container is stopped), and ``ttl`` (seconds from create)
or ``expires_at`` (an instant) for its deletion. In a create body or a PATCH; ``null``
removes a timer; a create that does not mention ``idle_timeout`` gets IDLE_TIMEOUT."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dockyard.domain.models import ContainerRecord
from dockyard.errors import ValidationError

FIELDS = frozenset({"idle_timeout", "ttl", "expires_at"})


def split_timers(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the timer fields, the rest)."""
    timers = {k: v for k, v in values.items() if k in FIELDS}
    return timers, {k: v for k, v in values.items() if k not in FIELDS}


def apply_timers(
    record: ContainerRecord, timers: dict[str, Any], *, default_idle: float | None = None
) -> None:
    """Set the record's ``idle_timeout`` and ``expires_at`` from a create's or a PATCH's
    fields (already typed by the schema); a field left out keeps its value."""
    if timers.get("ttl") is not None and timers.get("expires_at") is not None:
        raise ValidationError(
            "give ttl or expires_at, not both",
            code="CONFLICTING_FIELDS",
            details={"field": "expires_at"},
        )
    if "idle_timeout" in timers:
        record.idle_timeout = _positive(timers["idle_timeout"], "idle_timeout")
    elif default_idle is not None:
        record.idle_timeout = default_idle
    if timers.get("ttl") is not None:
        ttl = _positive(timers["ttl"], "ttl")
        assert ttl is not None
        record.expires_at = record.created_at + timedelta(seconds=ttl)
    elif "expires_at" in timers:
        record.expires_at = _instant(timers["expires_at"])
    elif "ttl" in timers:  # "ttl": null
        record.expires_at = None


MAX_SECONDS = 100 * 365 * 86400


def _positive(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_SECONDS  # also NaN; a larger one overflows a datetime
    ):
        raise ValidationError(
            f"{field} is a number of seconds above 0, at most {MAX_SECONDS} (100 years)",
            code="INVALID_TIMER",
            details={"field": field, "provided": value},
        )
    return float(value)


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            "expires_at is an ISO 8601 time with a time zone (e.g. 2030-01-01T00:00:00Z)",
            code="INVALID_TIMER",
            details={"field": "expires_at"},
        )
    return value
