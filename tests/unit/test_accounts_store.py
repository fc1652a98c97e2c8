"""The accounts part of the store (0002) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dockyard.domain.access.audit import AuditEntry, AuditQuery
from dockyard.domain.access.credentials import IssuedToken, ServiceKey, hash_secret
from dockyard.domain.access.permissions import Permission
from dockyard.domain.access.roles import CustomRole
from dockyard.domain.containers.quotas import Quota
from dockyard.domain.models import Account, ContainerRecord, ContainerSpec, Status, new_cuid
from dockyard.store import (
    Database,
    SqlAccountRepository,
    SqlAuditRepository,
    SqlContainerRepository,
    SqlQuotaStore,
    SqlRoleRepository,
    SqlServiceKeyRepository,
    SqlTokenRepository,
)

# The `db` fixture (SQLite and PostgreSQL) is in tests/unit/conftest.py.


def account(name: str, role: str = "user") -> Account:
    return Account(username=name, role=role, password_hash="h")


async def test_accounts_with_quotas_and_custom_roles(db: Database) -> None:
    accounts = SqlAccountRepository(db)
    await accounts.insert(account("amy", "operator"))
    await accounts.insert(account("ben"))
    assert (await accounts.get("amy")).role == "operator"  # type: ignore[union-attr]
    assert [a.username for a in await accounts.all()] == ["amy", "ben"]
    assert await accounts.count_role("operator") == 1
    assert await accounts.with_role("user") == ["ben"]
    assert await accounts.quota("amy") == Quota()
    quota = Quota(max_containers=3, max_cpus=1.5, max_memory="2g", max_upload_bytes=10**10)
    await accounts.set_quota("amy", quota)
    assert await accounts.quota("amy") == quota
    assert await SqlQuotaStore(db).quota("amy") == quota

    roles = SqlRoleRepository(db)
    role = CustomRole(
        name="operator",
        permissions=frozenset({Permission.CONTAINERS_READ, Permission.CONTAINERS_CONTROL}),
    )
    await roles.insert(role)
    role.permissions = frozenset({Permission.CONTAINERS_READ})
    await roles.save(role)
    assert [(r.name, r.permissions) for r in await roles.all()] == [
        ("operator", frozenset({Permission.CONTAINERS_READ}))
    ]
    await roles.delete("operator")
    assert await roles.all() == []


async def test_quota_store_sums_the_owners_specs(db: Database) -> None:
    await SqlAccountRepository(db).insert(account("amy"))
    containers = SqlContainerRepository(db)
    for status in (Status.RUNNING, Status.FAILED):
        await containers.insert(
            ContainerRecord(
                cuid=new_cuid(),
                owner="amy",
                spec=ContainerSpec(image="i:1", resources={"cpus": 0.5}),
                status=status,
            )
        )
    other = await containers.insert(
        ContainerRecord(cuid=new_cuid(), owner="amy", spec=ContainerSpec(image="i:2"))
    )
    store = SqlQuotaStore(db)
    assert len(await store.specs_of("amy", exclude=None)) == 2  # failed ones hold nothing
    assert [s.image for s in await store.specs_of("amy", exclude=other.cuid)] == ["i:1"]
    assert await store.specs_of("nobody", exclude=None) == []


async def test_keys_and_tokens(db: Database) -> None:
    accounts = SqlAccountRepository(db)
    await accounts.insert(account("amy"))
    keys = SqlServiceKeyRepository(db)
    key = ServiceKey(owner="amy", key_hash=hash_secret("dyk_x"), prefix="dyk_x", role="viewer")
    await keys.insert(key)
    assert (await keys.by_hash(hash_secret("dyk_x"))).id == key.id  # type: ignore[union-attr]
    assert [k.id for k in await keys.using_role("viewer")] == [key.id]
    when = datetime.now(UTC).replace(microsecond=0)
    await keys.touch(key.id, when)
    assert (await keys.get(key.id)).last_used_at == when  # type: ignore[union-attr]

    tokens = SqlTokenRepository(db)
    now = datetime.now(UTC)
    live = IssuedToken(
        owner="amy",
        key_id=key.id,
        expires_at=now + timedelta(hours=1),
        scope=frozenset({Permission.CONTAINERS_READ}),
    )
    old = IssuedToken(owner="amy", expires_at=now - timedelta(days=2))
    for t in (live, old):
        await tokens.insert(t)
    assert (await tokens.get(live.id)).scope == live.scope  # type: ignore[union-attr]
    assert [t.id for t in await tokens.active_of("amy", now)] == [live.id]
    assert await tokens.purge_expired(now - timedelta(days=1)) == 1
    assert await tokens.revoke(now, key_id=key.id) == 1
    assert (await tokens.get(live.id)).revoked_at is not None  # type: ignore[union-attr]
    assert await tokens.revoke(now, owner="amy") == 0  # already revoked

    # Deleting the account takes its keys and tokens along (foreign keys).
    await accounts.delete("amy")
    assert await keys.get(key.id) is None and await tokens.get(live.id) is None


async def test_audit_append_and_query(db: Database) -> None:
    repo = SqlAuditRepository(db)
    start = datetime.now(UTC) - timedelta(hours=1)
    entries = [
        AuditEntry(
            at=start + timedelta(minutes=i),
            username="amy" if i % 2 else "ben",
            method="POST",
            route="/containers/{cuid}/start",
            action="start_container" if i % 3 else "create_container",
            resource=f"c{i % 4}",
            request_id=f"r{i}",
            status=200,
        )
        for i in range(30)
    ]
    await repo.append(entries[:10])
    await repo.append(entries[10:])
    rows = await repo.query(AuditQuery(limit=100))
    assert [r.request_id for r in rows] == [f"r{i}" for i in reversed(range(30))]
    assert rows[0].seq > rows[-1].seq > 0 and rows[0].at.tzinfo is not None
    amy = await repo.query(AuditQuery(username="amy", limit=100))
    assert {r.username for r in amy} == {"amy"} and len(amy) == 15
    mixed = await repo.query(
        AuditQuery(username="ben", action="create_container", resource="c0", limit=100)
    )
    assert [r.request_id for r in mixed] == ["r24", "r12", "r0"]
    window = await repo.query(
        AuditQuery(since=start + timedelta(minutes=5), until=start + timedelta(minutes=8))
    )
    assert [r.request_id for r in window] == ["r7", "r6", "r5"]
    page = await repo.query(AuditQuery(limit=5, before_seq=rows[9].seq))
    assert [r.request_id for r in page] == [f"r{i}" for i in range(19, 14, -1)]
