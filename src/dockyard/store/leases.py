"""Leases in the database (issue 12): which Dockyard process runs a duty now.

A lease is held by one holder until it expires; its holder renews it, anyone takes it
once it has expired. Taking and renewing are one conditional ``UPDATE`` (or the first
``INSERT``), so two processes never both hold it. Times are the processes' own clocks
(kept in step by NTP): the time to live is many times any drift that matters."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.domain.models import utcnow
from dockyard.store.database import Database
from dockyard.store.tables import leases


class SqlLeaseRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hold(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew ``name`` for ``ttl`` seconds; False while another holds it."""
        now = utcnow()
        until = now + timedelta(seconds=ttl)
        try:
            async with self._db.writing() as conn:
                result = await conn.execute(
                    update(leases)
                    .where(
                        and_(
                            leases.c.name == name,
                            or_(leases.c.holder == holder, leases.c.expires_at < now),
                        )
                    )
                    .values(holder=holder, expires_at=until)
                )
                if result.rowcount:
                    return True
                found = await conn.execute(select(leases.c.name).where(leases.c.name == name))
                if found.first() is not None:
                    return False
                await conn.execute(
                    insert(leases).values(name=name, holder=holder, expires_at=until)
                )
                return True
        except IntegrityError:  # another process inserted it first
            return False

    async def release(self, name: str, holder: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))
            )

    async def live(self, prefix: str) -> dict[str, str]:
        """The unexpired leases whose name starts with ``prefix``: name -> holder."""
        now: datetime = utcnow()
        async with self._db.reading() as conn:
            rows = await conn.execute(
                select(leases.c.name, leases.c.holder).where(
                    and_(
                        leases.c.name.startswith(prefix, autoescape=True),
                        leases.c.expires_at >= now,
                    )
                )
            )
            return {row.name: row.holder for row in rows}
