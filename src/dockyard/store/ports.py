"""``PortAllocations``: the ``port_allocations`` table, whose primary key is the lock."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from dockyard.domain.containers.ports import Allocation, Key
from dockyard.domain.models import utcnow
from dockyard.store.database import Database
from dockyard.store.tables import port_allocations as table


class SqlPortAllocations:
    """One row per published host port. A claim is a plain insert: the key conflict of
    a port someone holds is the answer "taken" (never a read before the write)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, allocation: Allocation) -> bool:
        values = {
            "engine": allocation.engine,
            "host_port": allocation.host_port,
            "protocol": allocation.protocol,
            "cuid": allocation.cuid,
            "container_port": allocation.container_port,
            "replica": allocation.replica,
            "created_at": utcnow(),
        }
        try:
            async with self._db.writing() as conn:
                await conn.execute(insert(table).values(**values))
        except IntegrityError:
            return False
        return True

    async def holder(self, engine: str, host_port: int, protocol: str) -> str | None:
        stmt = select(table.c.cuid).where(
            table.c.engine == engine, table.c.host_port == host_port, table.c.protocol == protocol
        )
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        return str(row.cuid) if row else None

    async def held(self, cuid: str) -> list[Allocation]:
        stmt = select(table).where(table.c.cuid == cuid).order_by(table.c.host_port)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            Allocation(r.engine, r.host_port, r.protocol, r.cuid, r.container_port, r.replica)
            for r in rows
        ]

    async def release(self, cuid: str, keys: Iterable[Key] | None = None) -> None:
        """Every claim of ``cuid``, or only those of ``keys`` (never another's claim)."""
        stmt = delete(table).where(table.c.cuid == cuid)
        if keys is not None:
            wanted = list(keys)
            if not wanted:
                return
            stmt = stmt.where(
                or_(*(and_(table.c.host_port == p, table.c.protocol == pr) for p, pr in wanted))
            )
        async with self._db.writing() as conn:
            await conn.execute(stmt)
