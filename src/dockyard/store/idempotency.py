"""``IdempotencyRepository``: the ``idempotency_keys`` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.domain.idempotency import KeptAnswer
from dockyard.store.database import Database
from dockyard.store.tables import idempotency_keys as table


def _answer(row: Any) -> KeptAnswer:
    return KeptAnswer(
        owner=row.owner,
        key=row.key,
        route=row.route,
        body_hash=row.body_hash,
        instance=row.instance,
        state=row.state,
        status=row.status,
        content_type=row.content_type,
        body=bytes(row.body) if row.body is not None else None,
        created_at=row.created_at,
    )


class SqlIdempotencyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, answer: KeptAnswer) -> KeptAnswer | None:
        values = {
            "owner": answer.owner,
            "key": answer.key,
            "route": answer.route,
            "body_hash": answer.body_hash,
            "state": answer.state,
            "instance": answer.instance,
            "created_at": answer.created_at,
        }
        try:
            async with self._db.writing() as conn:
                await conn.execute(insert(table).values(**values))
            return None
        except IntegrityError:
            pass  # taken: the kept one answers
        stmt = select(table).where(table.c.owner == answer.owner, table.c.key == answer.key)
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:  # released in between: claim again
            return await self.claim(answer)
        return _answer(row)

    async def complete(
        self, owner: str, key: str, status: int, content_type: str | None, body: bytes
    ) -> None:
        stmt = (
            update(table)
            .where(table.c.owner == owner, table.c.key == key)
            .values(state="done", status=status, content_type=content_type, body=body)
        )
        async with self._db.writing() as conn:
            await conn.execute(stmt)

    async def release(self, owner: str, key: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(table).where(table.c.owner == owner, table.c.key == key))

    async def purge(self, before: datetime) -> int:
        async with self._db.writing() as conn:
            result = await conn.execute(delete(table).where(table.c.created_at < before))
        return int(result.rowcount or 0)
