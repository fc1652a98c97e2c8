"""Outgoing webhooks without a network: signing, matching, backoff, the rows queued from
committed events (in batches, for the right owners, no loops), and the secret shown once."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dockyard.adapters.crypto import AesGcmBox
from dockyard.domain.access.permissions import Principal
from dockyard.domain.automation.hooks import (
    FAILED,
    PENDING,
    Attempt,
    Delivery,
    DeliveryLimits,
    after_failure,
    backoff,
    check_patterns,
    matches,
    signature,
    verify,
)
from dockyard.domain.automation.webhooks import WebhookService
from dockyard.domain.models import utcnow
from dockyard.domain.observe.events import Event
from dockyard.errors import NotFoundError, ValidationError
from dockyard.store import Database
from dockyard.store.tables import webhooks as webhooks_table
from dockyard.store.webhooks import SqlWebhookRepository
from tests.conftest import FakeWorld, basic

ADMIN = Principal("root", "admin")
AMY = Principal("amy", "user")
BEN = Principal("ben", "user")


def test_signature_of_a_known_vector() -> None:
    body = b'{"type":"webhook.test"}'
    header = signature(b"whsec-test", 1700000000, body)
    assert header == (
        "t=1700000000,v1=fe594ad085757110f8b80561bb4389ae8e22a6e39028858d09e1e13a325cda26"
    )
    assert verify(b"whsec-test", header, body)
    assert not verify(b"whsec-test", header, body + b" ")
    assert not verify(b"another", header, body)
    assert not verify(b"whsec-test", "v1=abc", body)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ((), "container.created", True),
        (("*",), "die", True),
        (("container.*",), "container.updated", True),
        (("container.*",), "build.failed", False),
        (("build.failed",), "build.failed", True),
        (("build.failed",), "build.failed_more", False),
        (("build.*", "die"), "die", True),
        (("container.*",), "containers.x", False),
    ],
)
def test_patterns_match(patterns: tuple[str, ...], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_unknown_patterns_are_refused() -> None:
    assert check_patterns([" container.* ", "build.failed", "build.failed"]) == (
        "container.*",
        "build.failed",
    )
    for bad in ("nope.*", "container.create", "", "CONTAINER.*", "container.**"):
        with pytest.raises(ValidationError) as caught:
            check_patterns([bad])
        assert caught.value.code == "INVALID_EVENT_TYPE"


def test_backoff_grows_is_jittered_and_capped() -> None:
    assert backoff(1, base=1, cap=3600, draw=0.0) == 0.0
    assert backoff(1, base=1, cap=3600, draw=0.999) == pytest.approx(0.999)
    assert backoff(3, base=1, cap=3600, draw=0.5) == 2.0
    assert backoff(40, base=1, cap=3600, draw=0.999) <= 3600
    assert backoff(10_000, base=1, cap=3600, draw=0.5) == 1800.0
    for attempt in range(1, 30):
        assert 0 <= backoff(attempt, base=1, cap=3600) <= min(3600, 2 ** (attempt - 1))


def test_a_delivery_is_given_up_once_retry_for_has_passed() -> None:
    limits = DeliveryLimits(timeout=1, retry_for=60, max_in_flight=4)
    made = utcnow()
    delivery = Delivery("wd1", "wh1", 1, "die", "{}", made, attempts=3)
    retried = after_failure(delivery, Attempt(500, "status"), made + timedelta(seconds=10), limits)
    assert retried.status == PENDING and retried.attempts == 4
    assert retried.next_attempt_at is not None
    assert retried.next_attempt_at <= made + timedelta(seconds=60)
    assert retried.last_status_code == 500 and retried.last_error == "status"
    late = after_failure(delivery, Attempt(None, "timeout"), made + timedelta(seconds=60), limits)
    assert late.status == FAILED and late.next_attempt_at is None


class _Sender:
    async def check(self, url: str, field: str) -> None:
        if "169.254" in url:
            raise ValidationError("no", code="URL_NOT_ALLOWED")

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        return Attempt(200)


def _service(db: Database, batches: list[int]) -> WebhookService:
    repo = SqlWebhookRepository(db)
    insert = repo.insert_deliveries

    async def counted(batch: list[Delivery]) -> int:
        batches.append(len(batch))
        return await insert(batch)

    repo.insert_deliveries = counted  # type: ignore[method-assign]

    async def sees_all(username: str) -> bool:
        return username == ADMIN.username

    box = AesGcmBox.from_secret(os.urandom(32))
    return WebhookService(repo, box, _Sender(), sees_all=sees_all)


def _event(seq: int, owner: str, type_: str = "container.updated", **details: object) -> Event:
    return Event(type=type_, source="api", cuid="c1", owner=owner, seq=seq, details=details)


async def test_committed_events_become_rows_in_batches_for_their_owners(db: Database) -> None:
    batches: list[int] = []
    hooks = _service(db, batches)
    await hooks.start()
    try:
        assert not hooks.wants(_event(1, "amy"))  # no webhook yet
        amy = (await hooks.create(AMY, url="https://a.example/h", events=[], active=True)).hook
        ben = await hooks.create(BEN, url="https://b.example/h", events=["build.*"], active=True)
        root = await hooks.create(ADMIN, url="https://r.example/h", events=[], active=True)
        # Events somebody's webhook wants are urgent for the journal; others are not.
        assert hooks.wants(_event(1, "amy")) and hooks.wants(_event(1, "ben", "build.failed"))
        hooks.on_events([_event(i, "amy") for i in range(1, 1001)])
        await hooks.writer.flush(10)
        # Amy's and the admin's webhooks get Amy's container events; Ben's (builds) not.
        assert sum(batches) == 2000 and len(batches) < 20 and max(batches) <= 500
        amy_rows = await hooks.deliveries(AMY, amy.id, limit=500, cursor=None)
        assert len(amy_rows.items) == 500 and amy_rows.next_cursor is not None
        rest = await hooks.deliveries(AMY, amy.id, limit=500, cursor=amy_rows.next_cursor)
        ids = {d.id for d in amy_rows.items} | {d.id for d in rest.items}
        assert len(ids) == 1000 and rest.next_cursor is None
        seqs = sorted(json.loads(d.body)["seq"] for d in amy_rows.items + rest.items)
        assert seqs == list(range(1, 1001))
        assert (await hooks.deliveries(BEN, ben.hook.id, limit=10, cursor=None)).items == []
        with pytest.raises(NotFoundError):
            await hooks.deliveries(BEN, amy.id, limit=10, cursor=None)
        # A failure of Amy's webhook goes to the admin's, never back to Amy's own.
        batches.clear()
        failed = _event(0, "amy", "webhook.delivery_failed", webhook_id=amy.id)
        hooks.on_events([failed])
        await hooks.writer.flush(10)
        assert sum(batches) == 1
        assert len((await hooks.deliveries(ADMIN, root.hook.id, limit=500, cursor=None)).items)
    finally:
        await hooks.stop(5)


async def test_the_secret_is_sealed_and_a_url_is_checked(db: Database) -> None:
    hooks = _service(db, [])
    await hooks.start()
    try:
        made = await hooks.create(AMY, url="https://a.example/h", events=[], active=True)
        assert len(made.secret) == 64
        async with db.reading() as conn:
            row = (await conn.execute(select(webhooks_table))).one()
        assert made.secret.encode() not in bytes(row.secret)
        assert hooks.secret(made.hook) == made.secret.encode()
        with pytest.raises(ValidationError):
            await hooks.create(AMY, url="http://169.254.169.254/", events=[], active=True)
        with pytest.raises(ValidationError):
            await hooks.update(AMY, made.hook.id, url="http://169.254.169.254/x")
    finally:
        await hooks.stop(5)


async def test_the_secret_is_shown_once_and_never_again(tmp_path: Path) -> None:
    import httpx

    world = FakeWorld(tmp_path, fetch_allow_nets="127.0.0.1/32")
    async with world.app.router.lifespan_context(world.app):
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=basic("admin", "admin-secret-pass")
        ) as client:
            made = await client.post(
                "/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "events": ["container.*"]},
                headers={"Idempotency-Key": "k1"},
            )
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            hook_id = made.json()["id"]
            replay = await client.post(
                "/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "events": ["container.*"]},
                headers={"Idempotency-Key": "k1"},
            )
            assert replay.json()["id"] == hook_id and replay.json()["secret"] is None
            seen = [
                await client.get("/webhooks"),
                await client.get(f"/webhooks/{hook_id}"),
                await client.patch(f"/webhooks/{hook_id}", json={"active": False}),
                await client.post(f"/webhooks/{hook_id}/test"),
                await client.get(f"/webhooks/{hook_id}/deliveries"),
                await client.get("/events?type=webhook.created,webhook.updated"),
                await client.get("/audit"),
            ]
            for answer in seen:
                assert answer.status_code < 300, answer.text
                assert secret not in answer.text
            assert "secret" not in seen[1].json()
            refused = await client.post("/webhooks", json={"url": "http://169.254.169.254/"})
            assert refused.status_code == 400 and refused.json()["code"] == "URL_NOT_ALLOWED"
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*") if p.is_file())
    assert secret not in logs
