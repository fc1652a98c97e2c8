"""The journals: the audit trail and the container events, appended in batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.domain.access.audit import AuditEntry, AuditQuery
from dockyard.domain.observe.events import Event, EventQuery
from dockyard.store.database import Database
from dockyard.store.tables import audit, events


async def insert_audit(conn: AsyncConnection, entries: list[AuditEntry]) -> None:
    """Audit entries, in the caller's transaction (a change's own, or a batch's)."""
    await conn.execute(insert(audit), [e.model_dump(exclude={"seq"}) for e in entries])


class SqlAuditRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        async with self._db.writing() as conn:
            await insert_audit(conn, entries)

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        stmt: Select[Any] = select(audit).order_by(audit.c.seq.desc()).limit(query.limit)
        if query.username is not None:
            stmt = stmt.where(audit.c.username == query.username)
        if query.action is not None:
            stmt = stmt.where(audit.c.action == query.action)
        if query.resource is not None:
            stmt = stmt.where(audit.c.resource == query.resource)
        if query.since is not None:
            stmt = stmt.where(audit.c.at >= query.since)
        if query.until is not None:
            stmt = stmt.where(audit.c.at < query.until)
        if query.before_seq is not None:
            stmt = stmt.where(audit.c.seq < query.before_seq)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        # Rows this store wrote itself: built without re-validating (a page is 50 of them).
        return [AuditEntry.model_construct(**row._asdict()) for row in rows]


def _event(row: Any) -> Event:
    return Event(
        seq=int(row.seq),
        time=row.time,
        type=row.type,
        source=row.source,
        cuid=row.cuid,
        owner=row.owner,
        actor=row.actor,
        details=dict(row.details or {}),
    )


class SqlEventRepository:
    """``EventRepository``: the ``events`` table, appended in batches, trimmed by seq."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, batch: list[Event]) -> int:
        if not batch:
            return 0
        rows = [
            {
                "time": e.time,
                "type": e.type,
                "source": e.source,
                "cuid": e.cuid,
                "owner": e.owner,
                "actor": e.actor,
                "details": e.details,
            }
            for e in batch
        ]
        stmt = insert(events).returning(events.c.seq, sort_by_parameter_order=True)
        async with self._db.writing() as conn:
            seqs = [int(seq) for seq in (await conn.execute(stmt, rows)).scalars()]
        for event, seq in zip(batch, seqs, strict=True):
            event.seq = seq
        return max(seqs)

    async def query(self, query: EventQuery) -> list[Event]:
        order = events.c.seq.asc() if query.oldest_first else events.c.seq.desc()
        stmt: Select[Any] = select(events).order_by(order).limit(query.limit)
        if query.owner is not None:
            stmt = stmt.where(events.c.owner == query.owner)
        if query.cuid is not None:
            stmt = stmt.where(events.c.cuid == query.cuid)
        if query.types:
            stmt = stmt.where(events.c.type.in_(list(query.types)))
        if query.since is not None:
            stmt = stmt.where(events.c.time >= query.since)
        if query.until is not None:
            stmt = stmt.where(events.c.time <= query.until)
        if query.before_seq is not None:
            stmt = stmt.where(events.c.seq < query.before_seq)
        if query.after_seq is not None:
            stmt = stmt.where(events.c.seq > query.after_seq)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_event(row) for row in rows]

    async def last_seq(self) -> int:
        async with self._db.reading() as conn:
            value = (await conn.execute(select(func.max(events.c.seq)))).scalar_one()
        return int(value or 0)

    async def trim(self, keep: int) -> int:
        """Delete all but the newest ``keep`` events."""
        cutoff = (
            select(events.c.seq)
            .order_by(events.c.seq.desc())
            .offset(keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        async with self._db.writing() as conn:
            result = await conn.execute(delete(events).where(events.c.seq < cutoff))
        return int(result.rowcount or 0)
