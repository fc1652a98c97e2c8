"""Table definitions. Changing one means a new Alembic revision in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in and out; SQLite forgets the zone, so it is put back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("password_changed", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

containers = Table(
    "containers",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("cuid", String(40), nullable=False, unique=True),
    Column("owner", String(64), nullable=False),
    Column("image", String(255), nullable=False),
    Column("name", String(64)),
    # ",a,b," so that one tag can be matched with LIKE on every database.
    Column("tags_text", Text, nullable=False, default=","),
    # ",8080/tcp,9000/udp," so that a host port can be found with LIKE.
    Column("host_ports", Text, nullable=False, default=","),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("engine", String(64), nullable=False, default="local"),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index("ix_containers_owner_seq", "owner", "seq"),
    Index("ix_containers_status_seq", "status", "seq"),
)
