"""``RegistryRepository``: the ``registries`` table (secrets sealed by the domain)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, insert, or_, select

from dockyard.domain.images.registries import StoredRegistry
from dockyard.store.database import Database
from dockyard.store.tables import registries


def _stored(row: Any) -> StoredRegistry:
    return StoredRegistry(
        id=row.id,
        owner=row.owner,
        shared=bool(row.shared),
        server=row.server,
        username=row.username,
        secret=bytes(row.secret),
        created_at=row.created_at,
    )


class SqlRegistryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, registry: StoredRegistry) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                insert(registries).values(
                    id=registry.id,
                    owner=registry.owner,
                    shared=registry.shared,
                    server=registry.server,
                    username=registry.username,
                    secret=registry.secret,
                    created_at=registry.created_at,
                )
            )

    async def get(self, registry_id: str) -> StoredRegistry | None:
        async with self._db.reading() as conn:
            row = (
                await conn.execute(select(registries).where(registries.c.id == registry_id))
            ).first()
        return None if row is None else _stored(row)

    async def visible_to(self, owner: str | None) -> list[StoredRegistry]:
        stmt: Select[Any] = select(registries).order_by(registries.c.created_at, registries.c.id)
        if owner is not None:
            stmt = stmt.where(or_(registries.c.owner == owner, registries.c.shared.is_(True)))
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_stored(row) for row in rows]

    async def delete(self, registry_id: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(registries).where(registries.c.id == registry_id))
