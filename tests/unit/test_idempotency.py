"""Idempotency keys on the store (SQLite and PostgreSQL): claim, replay, reuse, restart."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dockyard.domain.idempotency import Claim, Idempotency, KeptAnswer
from dockyard.errors import ConflictError, StateError, ValidationError
from dockyard.store import Database
from dockyard.store.idempotency import SqlIdempotencyRepository
from tests.conftest import FakeWorld


@pytest.fixture
def repo(db: Database) -> SqlIdempotencyRepository:
    return SqlIdempotencyRepository(db)


async def test_the_first_answer_is_replayed_also_after_a_restart(
    repo: SqlIdempotencyRepository,
) -> None:
    first = Idempotency(repo)
    claim = await first.begin("ann", "k-1", "POST /containers", b'{"image": "x"}')
    assert claim == Claim("ann", "k-1")
    with pytest.raises(ConflictError) as running:
        await first.begin("ann", "k-1", "POST /containers", b'{"image": "x"}')
    assert running.value.code == "IDEMPOTENCY_IN_PROGRESS"
    await first.finish(claim, 201, "application/json", b'{"cuid": "c1"}')

    restarted = Idempotency(repo)  # a new process on the same database
    kept = await restarted.begin("ann", "k-1", "POST /containers", b'{"image": "x"}')
    assert isinstance(kept, KeptAnswer)
    assert (kept.status, kept.content_type, kept.body) == (
        201,
        "application/json",
        b'{"cuid": "c1"}',
    )
    # Keys are the account's own: another account's same key is another request.
    assert isinstance(await restarted.begin("bob", "k-1", "POST /containers", b"{}"), Claim)


async def test_another_body_or_route_with_a_key_is_refused(
    repo: SqlIdempotencyRepository,
) -> None:
    service = Idempotency(repo)
    claim = await service.begin("ann", "k", "POST /containers", b"a")
    await service.finish(claim, 201, None, b"x")
    for route, body in (("POST /containers", b"b"), ("POST /accounts", b"a")):
        with pytest.raises(StateError) as refused:
            await service.begin("ann", "k", route, body)
        assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_a_5xx_frees_the_key_and_a_crash_is_told(repo: SqlIdempotencyRepository) -> None:
    service = Idempotency(repo)
    claim = await service.begin("ann", "k", "POST /containers", b"a")
    await service.finish(claim, 503, "application/json", b"{}")
    assert isinstance(await service.begin("ann", "k", "POST /containers", b"a"), Claim)
    # The process that claimed it dies before answering: a retry learns so.
    with pytest.raises(ConflictError) as cut:
        await Idempotency(repo).begin("ann", "k", "POST /containers", b"a")
    assert cut.value.code == "IDEMPOTENCY_INTERRUPTED"


async def test_keys_expire(repo: SqlIdempotencyRepository) -> None:
    service = Idempotency(repo, keep=timedelta(seconds=-1))  # everything is already old
    claim = await service.begin("ann", "k", "POST /containers", b"a")
    await service.finish(claim, 201, None, b"x")
    assert isinstance(await service.begin("ann", "k", "POST /containers", b"other"), Claim)
    assert await service.purge() == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "new\nline", "é"])
async def test_a_malformed_key_is_refused(repo: SqlIdempotencyRepository, key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        await Idempotency(repo).begin("ann", key, "POST /containers", b"")
    assert refused.value.code == "INVALID_IDEMPOTENCY_KEY"


async def test_a_retried_create_answers_the_first_container(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    """SPEC §4 over HTTP: same key and body -> the first 201 again, one container."""
    body = {"image": "busybox:test", "tags": ["retry"]}
    key = {"Idempotency-Key": "create-7f3a"}
    first = await fake_client.post("/containers", json=body, headers=key)
    again = await fake_client.post("/containers", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    listed = (await fake_client.get("/containers", params={"tag": "retry"})).json()
    assert [c["cuid"] for c in listed["containers"]] == [first.json()["cuid"]]
    other = await fake_client.post("/containers", json={**body, "tags": ["other"]}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # A failed request keeps its answer too (a 4xx), a new key runs anew.
    bad = {"Idempotency-Key": "create-bad"}
    for _ in range(2):
        resp = await fake_client.post("/containers", json={"image": "nope:1"}, headers=bad)
        assert resp.status_code == 400 and resp.json()["code"] == "IMAGE_NOT_FOUND"
    # Accounts and keys take keys too.
    acct = {"username": "ida", "password": "ida-password-1", "role": "user"}
    made = [
        await fake_client.post("/accounts", json=acct, headers={"Idempotency-Key": "acct-1"})
        for _ in range(2)
    ]
    assert [r.status_code for r in made] == [201, 201]
    skey = [
        await fake_client.post("/servicekeys", json={}, headers={"Idempotency-Key": "sk-1"})
        for _ in range(2)
    ]
    # The secret is shown once and never stored: the replay names the key, without it.
    assert skey[0].json()["key"].startswith("dyk_") and skey[1].json()["key"] is None
    assert skey[1].json()["id"] == skey[0].json()["id"]
    assert len((await fake_client.get("/servicekeys")).json()["servicekeys"]) == 1
