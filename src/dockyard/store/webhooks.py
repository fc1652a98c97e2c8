"""``WebhookRepository``: the ``webhooks`` and ``webhook_deliveries`` tables (migration
0006; secrets sealed by the domain, delivery bodies kept as sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from dockyard.domain.automation.hooks import PENDING, Delivery, Outcome, Webhook
from dockyard.store.database import Database
from dockyard.store.tables import webhook_deliveries, webhooks

D = webhook_deliveries.c


def _hook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        owner=row.owner,
        url=row.url,
        events=tuple(row.events or ()),
        secret=bytes(row.secret),
        active=bool(row.active),
        created_at=row.created_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_seq=row.event_seq,
        event_type=row.event_type,
        body=row.body,
        created_at=row.created_at,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


class SqlWebhookRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, hook: Webhook) -> None:
        async with self._db.writing() as conn:
            await conn.execute(insert(webhooks).values(**_hook_row(hook)))

    async def get(self, webhook_id: str) -> Webhook | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))).first()
        return None if row is None else _hook(row)

    async def all(self) -> list[Webhook]:
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(webhooks).order_by(webhooks.c.created_at))).all()
        return [_hook(row) for row in rows]

    async def save(self, hook: Webhook) -> None:
        values = _hook_row(hook)
        async with self._db.writing() as conn:
            await conn.execute(update(webhooks).where(webhooks.c.id == hook.id).values(**values))

    async def delete(self, webhook_id: str) -> None:
        async with self._db.writing() as conn:
            await conn.execute(delete(webhook_deliveries).where(D.webhook_id == webhook_id))
            await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))

    async def insert_deliveries(self, batch: list[Delivery]) -> int:
        if not batch:
            return 0
        rows = [
            {
                "id": d.id,
                "webhook_id": d.webhook_id,
                "event_seq": d.event_seq,
                "event_type": d.event_type,
                "body": d.body,
                "status": d.status,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
                "created_at": d.created_at,
            }
            for d in batch
        ]
        async with self._db.writing() as conn:
            await conn.execute(insert(webhook_deliveries), rows)
        return len(rows)

    async def delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        stmt = select(webhook_deliveries).where(D.id == delivery_id, D.webhook_id == webhook_id)
        async with self._db.reading() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _delivery(row)

    async def deliveries(
        self, webhook_id: str, *, before: datetime | None, limit: int
    ) -> list[Delivery]:
        stmt = (
            select(webhook_deliveries)
            .where(D.webhook_id == webhook_id)
            .order_by(D.created_at.desc(), D.id.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(D.created_at < before)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_delivery(row) for row in rows]

    async def due(self, webhook_id: str, now: datetime, limit: int) -> list[Delivery]:
        stmt = (
            select(webhook_deliveries)
            .where(D.webhook_id == webhook_id, D.status == PENDING, D.next_attempt_at <= now)
            .order_by(D.next_attempt_at, D.created_at)
            .limit(limit)
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_delivery(row) for row in rows]

    async def next_due(self) -> datetime | None:
        stmt = (
            select(D.next_attempt_at)
            .where(D.status == PENDING, D.next_attempt_at.is_not(None))
            .order_by(D.next_attempt_at)
            .limit(1)
        )
        async with self._db.reading() as conn:
            value: datetime | None = (await conn.execute(stmt)).scalar_one_or_none()
        return value

    async def settle(self, outcomes: list[Outcome]) -> int:
        """Each delivery's state after an attempt, in one transaction."""
        if not outcomes:
            return 0
        stmt = (
            update(webhook_deliveries)
            .where(D.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                delivered_at=bindparam("b_delivered"),
            )
        )
        rows = [
            {
                "b_id": o.delivery_id,
                "b_status": o.status,
                "b_attempts": o.attempts,
                "b_next": o.next_attempt_at,
                "b_code": o.last_status_code,
                "b_error": (o.last_error or None) and o.last_error[:255],
                "b_delivered": o.delivered_at,
            }
            for o in outcomes
        ]
        async with self._db.writing() as conn:
            await conn.execute(stmt, rows)
        return len(rows)


def _hook_row(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "owner": hook.owner,
        "url": hook.url,
        "events": list(hook.events),
        "secret": hook.secret,
        "active": hook.active,
        "created_at": hook.created_at,
    }
