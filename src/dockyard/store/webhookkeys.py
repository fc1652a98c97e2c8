"""``WebhookKeyRepository``: the ``webhook_keys`` and ``hub_deliveries`` tables (migration
0006); a delivery's row goes in with its job's, in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from dockyard.domain.automation.hubkeys import WebhookKey
from dockyard.domain.images.models import Job
from dockyard.domain.models import utcnow
from dockyard.errors import ConflictError
from dockyard.store.database import Database
from dockyard.store.jobs import job_row
from dockyard.store.tables import hub_deliveries, jobs, webhook_keys

K = webhook_keys.c
H = hub_deliveries.c


def _key(row: Any) -> WebhookKey:
    return WebhookKey(
        id=row.id,
        owner=row.owner,
        key_hash=row.key_hash,
        image=row.image,
        build=dict(row.build) if row.build else None,
        created_at=row.created_at,
    )


class SqlWebhookKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, key: WebhookKey) -> None:
        async with self._db.writing() as conn:
            await conn.execute(
                insert(webhook_keys).values(
                    id=key.id,
                    owner=key.owner,
                    key_hash=key.key_hash,
                    image=key.image,
                    build=key.build,
                    created_at=key.created_at,
                )
            )

    async def get(self, key_id: str) -> WebhookKey | None:
        return await self._one(select(webhook_keys).where(K.id == key_id))

    async def by_hash(self, key_hash: str) -> WebhookKey | None:
        return await self._one(select(webhook_keys).where(K.key_hash == key_hash))

    async def _one(self, stmt: Any) -> WebhookKey | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _key(row)

    async def of_owner(self, owner: str | None) -> list[WebhookKey]:
        stmt = select(webhook_keys).order_by(K.created_at, K.id)
        if owner is not None:
            stmt = stmt.where(K.owner == owner)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_key(row) for row in rows]

    async def delete(self, key_id: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(hub_deliveries).where(H.key_id == key_id))
            await conn.execute(delete(webhook_keys).where(K.id == key_id))

    async def delivery(self, key_id: str, fingerprint: str) -> str | None:
        stmt = select(H.job_id).where(H.key_id == key_id, H.fingerprint == fingerprint)
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else str(row.job_id)

    async def insert_with_job(self, job: Job, key_id: str, fingerprint: str) -> None:
        try:
            async with self._db.writing() as conn:
                await conn.execute(
                    insert(hub_deliveries).values(
                        key_id=key_id, fingerprint=fingerprint, job_id=job.id, created_at=utcnow()
                    )
                )
                await conn.execute(insert(jobs).values(**job_row(job)))
        except IntegrityError:
            raise ConflictError(
                "this delivery was received before", code="DELIVERY_REPLAYED"
            ) from None
