"""Issue 9: the audit entry of an accepted change is committed before its answer leaves
(group commit through the audit writer), within a bound; refusals do not wait."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from dockyard.api.middleware import ActionLog, Metrics, RequestContextMiddleware
from dockyard.domain.access.audit import AuditEntry, AuditQuery, AuditTrail
from tests.conftest import FakeWorld


def committed_entries(world: FakeWorld) -> list[tuple[str, str, int]]:
    """What the database file holds, as another process would read it."""
    db = sqlite3.connect(f"file:{world.settings.data_dir / 'dockyard.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT method, action, status FROM audit ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(str(m), str(a), int(s)) for m, a, s in rows]


async def test_a_2xx_change_is_in_the_database_when_its_answer_arrives(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    created = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert created.status_code == 201, created.text
    assert ("POST", "create_container", 201) in committed_entries(fake_world)
    cuid = created.json()["cuid"]
    creates = [fake_client.post("/containers", json={"image": "busybox:test"}) for _ in range(5)]
    answers = await asyncio.gather(*creates, fake_client.delete(f"/containers/{cuid}"))
    assert [a.status_code for a in answers] == [201] * 5 + [204]
    entries = committed_entries(fake_world)
    assert entries.count(("POST", "create_container", 201)) == 6
    assert entries.count(("DELETE", "delete_container", 204)) == 1


class HeldRepository:
    """A store whose writes wait until let through (a lock held elsewhere, a slow disk)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entries: list[AuditEntry] = []

    async def append(self, entries: list[AuditEntry]) -> None:
        await self.gate.wait()
        self.entries += entries

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        return list(self.entries)


@pytest.fixture
async def held(
    tmp_path: Path,
) -> AsyncIterator[tuple[HeldRepository, AuditTrail, httpx.AsyncClient]]:
    repo = HeldRepository()
    trail = AuditTrail(repo, commit_wait=0.2)
    trail.start()
    action_log = ActionLog(tmp_path / "actions.jsonl")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["user"] = "ann"
        status = 201 if scope["path"] == "/ok" else 403
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    outer = RequestContextMiddleware(
        app, action_log=action_log, metrics=Metrics(), dev_mode=False, audit=trail
    )
    transport = httpx.ASGITransport(app=outer)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield repo, trail, client
    finally:
        repo.gate.set()
        await trail.stop(5)
        action_log.close()


async def test_a_store_that_cannot_take_the_entry_does_not_undo_the_2xx(
    held: tuple[HeldRepository, AuditTrail, httpx.AsyncClient], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, trail, client = held
    async with asyncio.timeout(5):  # bounded by commit_wait (0.2 s), not the store
        answer = await client.post("/ok")
    assert answer.status_code == 201
    assert "audit.not_committed" in capsys.readouterr().out
    repo.gate.set()  # the store is back: the entry is written after all, once
    await trail.flush(5)
    assert [(e.action, e.status) for e in repo.entries] == [("unknown", 201)]


async def test_refusals_and_reads_never_wait_for_the_store(
    held: tuple[HeldRepository, AuditTrail, httpx.AsyncClient], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, client = held
    async with asyncio.timeout(0.15):  # below commit_wait: nobody waited
        assert (await client.post("/refused")).status_code == 403
        assert (await client.get("/ok")).status_code == 201
    assert "audit.not_committed" not in capsys.readouterr().out


def entries_of(world: FakeWorld, request_id: str) -> list[tuple[str, str | None, int]]:
    db = sqlite3.connect(f"file:{world.settings.data_dir / 'dockyard.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT action, resource, status FROM audit WHERE request_id = ?", (request_id,)
        ).fetchall()
    finally:
        db.close()
    return [(str(a), r, int(s)) for a, r, s in rows]


async def test_a_create_and_a_delete_have_one_entry_each_written_with_their_change(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    """The entry goes into the store with the change's last write (domain/recording.py),
    and the middleware does not write it a second time."""
    created = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert created.status_code == 201, created.text
    cuid = created.json()["cuid"]
    assert entries_of(fake_world, created.headers["x-request-id"]) == [
        ("create_container", cuid, 201)
    ]
    deleted = await fake_client.delete(f"/containers/{cuid}")
    assert deleted.status_code == 204
    assert entries_of(fake_world, deleted.headers["x-request-id"]) == [
        ("delete_container", cuid, 204)
    ]


async def test_a_create_that_fails_has_only_its_failure_in_the_audit(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    """Its clean-up deletes the record, but never with the 201 entry the request would
    have had: the audit says what the client was told."""
    fake_world.compose.fail_next = "Error response from daemon: something broke"
    failed = await fake_client.post("/containers", json={"image": "busybox:test"})
    assert failed.status_code >= 400
    audit = await fake_client.get("/audit", params={"action": "create_container"})
    assert audit.status_code == 200, audit.text  # GET /audit reads the queue's entries too
    mine = [e for e in audit.json()["entries"] if e["request_id"] == failed.headers["x-request-id"]]
    assert [(e["action"], e["status"]) for e in mine] == [("create_container", failed.status_code)]
    listed = await fake_client.get("/containers")
    assert listed.json()["containers"] == []
