"""Keyset pagination shared by every list: opaque cursors, page limits, a page.

A cursor wraps the store's sequence number of the last row shown; the next page starts
below it. Clients treat it as opaque (SPEC §4, ``cursor=``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from dockyard.errors import ValidationError


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=Sequenced)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s:"):
            raise ValueError(raw)
        return int(raw[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "cursor is not one this service handed out",
            code="INVALID_CURSOR",
            details={"field": "cursor", "provided": cursor},
        ) from None


def check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise ValidationError(
            f"limit must be between 1 and {maximum}",
            code="INVALID_LIMIT",
            details={"field": "limit", "provided": limit},
        )


def before(cursor: str | None) -> int | None:
    """The sequence number a page starts below (None: the newest)."""
    return decode_cursor(cursor) if cursor else None


def page_of(rows: Sequence[T], limit: int) -> Page[T]:
    """``rows`` was fetched with ``limit + 1``: the extra row says whether more follow."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return Page(shown, encode_cursor(shown[-1].seq) if more and shown else None)
