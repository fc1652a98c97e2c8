"""Accounts, custom roles, service keys, tokens, quotas and the audit trail (issue 5),
through the HTTP API with the in-memory engine and the real SQLite store."""

from __future__ import annotations

import io
import stat
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.domain.access.credentials import IssuedToken, ServiceKey, hash_secret
from tests.conftest import ADMIN, FakeWorld, basic


def client_for(base: httpx.AsyncClient, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=base._transport, base_url="http://test", headers=headers)


async def add_user(
    admin: httpx.AsyncClient, name: str, role: str = "user", **extra: Any
) -> httpx.AsyncClient:
    resp = await admin.post(
        "/accounts",
        json={"username": name, "password": f"{name}-password", "role": role, **extra},
    )
    assert resp.status_code == 201, resp.text
    return client_for(admin, basic(name, f"{name}-password"))


async def audit(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await admin.get("/audit", params=params)
    assert resp.status_code == 200, resp.text
    entries: list[dict[str, Any]] = resp.json()["entries"]
    return entries


# -- accounts ----------------------------------------------------------------------------


async def test_account_lifecycle(fake_world: FakeWorld, fake_client: httpx.AsyncClient) -> None:
    resp = await fake_client.post(
        "/accounts",
        json={
            "username": "carol",
            "password": "carol-password",
            "role": {"name": "viewer"},  # Shipyard's shape works too
            "quota": {"max_containers": 2, "max_memory": "1G"},
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["role"] == "viewer" and body["quota"]["max_memory"] == "1g"
    assert "password" not in str(body) and "hash" not in str(body)
    names = [a["username"] for a in (await fake_client.get("/accounts")).json()["accounts"]]
    assert names == ["admin", "carol"]
    assert (
        await fake_client.post("/accounts", json={**{"username": "carol"}, "password": "x" * 9})
    ).json()["code"] == "ACCOUNT_EXISTS"
    for bad in (
        {"username": "me", "password": "long-enough"},
        {"username": "a b", "password": "long-enough"},
        {"username": "ok", "password": "short"},
        {"username": "ok", "password": "long-enough", "role": "wizard"},
    ):
        resp = await fake_client.post("/accounts", json=bad)
        assert resp.status_code == 400, (bad, resp.text)

    carol = client_for(fake_client, basic("carol", "carol-password"))
    assert (await carol.get("/auth/whoami")).json()["role"] == "viewer"
    assert (await carol.post("/containers", json={"image": "busybox:test"})).status_code == 403
    # Promotion takes effect at once, despite the credential cache.
    resp = await fake_client.patch("/accounts/carol", json={"role": "user"})
    assert resp.status_code == 200 and resp.json()["role"] == "user"
    assert (await carol.post("/containers", json={"image": "busybox:test"})).status_code == 201
    me = (await carol.get("/accounts/me")).json()
    assert me["usage"]["containers"] == 1 and me["quota"]["max_containers"] == 2

    # An account that owns containers is not deleted.
    resp = await fake_client.delete("/accounts/carol")
    assert resp.status_code == 409 and resp.json()["code"] == "ACCOUNT_HAS_CONTAINERS"
    cuid = (await carol.get("/containers")).json()["containers"][0]["cuid"]
    assert (await carol.delete(f"/containers/{cuid}")).status_code == 204
    key = (await carol.post("/servicekeys", json={})).json()["key"]
    assert (await fake_client.delete("/accounts/carol")).status_code == 204
    assert (await carol.get("/auth/whoami")).status_code == 401
    assert (
        await client_for(fake_client, {"X-Service-Key": key}).get("/auth/whoami")
    ).status_code == 401
    assert (await fake_client.get("/accounts/carol")).status_code == 404
    await carol.aclose()


async def test_the_last_admin_stays_and_nobody_deletes_itself(
    fake_client: httpx.AsyncClient,
) -> None:
    resp = await fake_client.patch("/accounts/admin", json={"role": "user"})
    assert resp.status_code == 409 and resp.json()["code"] == "LAST_ADMIN"
    resp = await fake_client.delete("/accounts/admin")
    assert resp.status_code == 409 and resp.json()["code"] == "CANNOT_DELETE_SELF"
    second = await add_user(fake_client, "root2", "admin")
    resp = await second.delete("/accounts/admin")
    assert resp.status_code == 204
    resp = await second.patch("/accounts/root2", json={"role": "user"})
    assert resp.json()["code"] == "LAST_ADMIN"
    await second.aclose()


async def test_change_own_password_needs_the_current_one_and_revokes_tokens(
    fake_client: httpx.AsyncClient,
) -> None:
    dave = await add_user(fake_client, "dave")
    token = (await dave.post("/auth/token")).json()["token"]
    bearer = client_for(fake_client, {"Authorization": f"Bearer {token}"})
    assert (await bearer.get("/auth/whoami")).status_code == 200
    # A stolen token alone cannot change the password.
    resp = await bearer.put(
        "/accounts/me/password",
        json={"current_password": "guess-guess", "new_password": "new-dave-password"},
    )
    assert resp.status_code == 401
    resp = await dave.put(
        "/accounts/me/password",
        json={"current_password": "dave-password", "new_password": "new-dave-password"},
    )
    assert resp.status_code == 204
    assert (await dave.get("/auth/whoami")).status_code == 401  # old password: cache dropped
    assert (await bearer.get("/auth/whoami")).json()["code"] == "CREDENTIALS_REVOKED"
    fresh = client_for(fake_client, basic("dave", "new-dave-password"))
    assert (await fresh.get("/auth/whoami")).status_code == 200
    for c in (dave, bearer, fresh):
        await c.aclose()


# -- roles -------------------------------------------------------------------------------


async def test_custom_roles_and_no_one_grants_more_than_it_holds(
    fake_client: httpx.AsyncClient,
) -> None:
    roles = (await fake_client.get("/roles")).json()
    assert {r["name"] for r in roles["roles"]} == {"admin", "user", "viewer"}
    assert "containers:exec" in roles["permissions"]
    resp = await fake_client.post(
        "/roles",
        json={
            "name": "manager",
            "permissions": ["accounts:manage", "containers:read", "keys:manage"],
            "description": "manages accounts, reads containers",
        },
    )
    assert resp.status_code == 201, resp.text
    assert (await fake_client.post("/roles", json={"name": "user", "permissions": []})).json()[
        "code"
    ] == "ROLE_EXISTS"
    bad = await fake_client.post("/roles", json={"name": "x", "permissions": ["fly:away"]})
    assert bad.status_code == 400 and bad.json()["code"] == "UNKNOWN_PERMISSION"
    assert (await fake_client.patch("/roles/admin", json={"permissions": []})).json()[
        "code"
    ] == "ROLE_BUILTIN"

    manager = await add_user(fake_client, "mia", "manager")
    # Not more than it holds: a role, an account's role, a key's role.
    resp = await manager.post(
        "/roles", json={"name": "deleter", "permissions": ["containers:delete"]}
    )
    assert resp.status_code == 403 and resp.json()["details"]["missing"] == ["containers:delete"]
    resp = await manager.post(
        "/accounts", json={"username": "u1", "password": "u1-password", "role": "user"}
    )
    assert resp.status_code == 403
    resp = await manager.post("/roles", json={"name": "reader", "permissions": ["containers:read"]})
    assert resp.status_code == 201
    resp = await manager.post(
        "/accounts", json={"username": "u2", "password": "u2-password", "role": "reader"}
    )
    assert resp.status_code == 201
    # Nor touch an account stronger than itself (the admin), nor promote itself.
    assert (
        await manager.patch("/accounts/admin", json={"password": "hijacked-1"})
    ).status_code == 403
    assert (await manager.delete("/accounts/admin")).status_code == 403
    assert (await manager.patch("/accounts/mia", json={"role": "admin"})).status_code == 403
    assert (
        await manager.patch(
            "/roles/manager",
            json={
                "permissions": [
                    "accounts:manage",
                    "containers:read",
                    "keys:manage",
                    "containers:delete",
                ]
            },
        )
    ).status_code == 403

    # A role in use is not deleted; changing it takes effect at once.
    assert (await fake_client.delete("/roles/reader")).json()["code"] == "ROLE_IN_USE"
    u2 = client_for(fake_client, basic("u2", "u2-password"))
    assert (await u2.get("/containers")).status_code == 200
    resp = await fake_client.patch("/roles/reader", json={"permissions": ["system:read"]})
    assert resp.status_code == 200 and resp.json()["permissions"] == ["system:read"]
    assert (await u2.get("/containers")).status_code == 403
    assert (await fake_client.patch("/accounts/u2", json={"role": "viewer"})).status_code == 200
    assert (await fake_client.delete("/roles/reader")).status_code == 204
    assert (await fake_client.get("/roles/reader")).status_code == 404
    for c in (manager, u2):
        await c.aclose()


# -- service keys ------------------------------------------------------------------------


async def test_service_keys_shipyard_style(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    erin = await add_user(fake_client, "erin")
    resp = await erin.post("/servicekeys", json={"description": "test key"})
    assert resp.status_code == 201
    created = resp.json()
    key = created["key"]
    assert created["description"] == "test key" and key.startswith("dyk_") and len(key) > 40
    listed = (await erin.get("/servicekeys")).json()["servicekeys"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is None

    with_key = client_for(fake_client, {"X-Service-Key": key})
    me = (await with_key.get("/auth/whoami")).json()
    assert me["username"] == "erin" and me["credential"] == "key"
    cuid = (await with_key.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    assert (await erin.get(f"/containers/{cuid}")).json()["owner"] == "erin"

    async def used() -> bool:
        keys = (await erin.get("/servicekeys")).json()["servicekeys"]
        return keys[0]["last_used_at"] is not None

    deadline = time.monotonic() + 5
    while not await used():
        assert time.monotonic() < deadline, "last_used_at was never recorded"
        await fake_world.app.state.services.auth.close()

    # Only a hash is stored: the key is nowhere in the database file.
    db = (fake_world.settings.data_dir / "dockyard.db").read_bytes()
    wal = fake_world.settings.data_dir / "dockyard.db-wal"
    stored = db + (wal.read_bytes() if wal.exists() else b"")
    assert key.encode() not in stored and hash_secret(key).encode() in stored

    both = client_for(fake_client, {"X-Service-Key": key, **basic("erin", "erin-password")})
    assert (await both.get("/auth/whoami")).json()["code"] == "MALFORMED_CREDENTIALS"

    # Revoked by value (Shipyard's DELETE /servicekeys body), then refused at once.
    resp = await erin.request("DELETE", "/servicekeys", json={"key": key})
    assert resp.status_code == 204
    resp = await with_key.get("/auth/whoami")
    assert resp.status_code == 401 and resp.json()["code"] == "INVALID_CREDENTIALS"
    assert (await erin.request("DELETE", "/servicekeys", json={"key": key})).status_code == 404
    for c in (erin, with_key, both):
        await c.aclose()


async def test_a_key_with_a_narrower_role_and_an_expiry(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    fred = await add_user(fake_client, "fred")
    resp = await fred.post("/servicekeys", json={"role": "viewer", "expires_in": 3600})
    assert resp.status_code == 201
    narrow = client_for(fake_client, {"X-Service-Key": resp.json()["key"]})
    assert resp.json()["expires_at"]
    assert (await narrow.get("/containers")).status_code == 200
    resp = await narrow.post("/containers", json={"image": "busybox:test"})
    assert resp.status_code == 403
    # A token from a narrow key is just as narrow; a key from it cannot widen either.
    token = (await narrow.post("/auth/token")).json()["token"]
    bearer = client_for(fake_client, {"Authorization": f"Bearer {token}"})
    assert (await bearer.post("/containers", json={"image": "busybox:test"})).status_code == 403
    assert (await narrow.post("/servicekeys", json={})).status_code == 403  # keys:manage
    # A key made by the admin with role "user" sees only the admin's own containers.
    other = (await fred.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    admin_key = (await fake_client.post("/servicekeys", json={"role": "user"})).json()["key"]
    as_admin_user = client_for(fake_client, {"X-Service-Key": admin_key})
    assert (await as_admin_user.get(f"/containers/{other}")).status_code == 404
    assert (await fake_client.get(f"/containers/{other}")).status_code == 200

    # An expired key is refused.
    keys = fake_world.app.state.services.accounts._keys
    secret = "dyk_expired-key-for-the-test-0123456789abcdef"
    await keys.insert(
        ServiceKey(
            owner="fred",
            key_hash=hash_secret(secret),
            prefix=secret[:10],
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
    )
    resp = await client_for(fake_client, {"X-Service-Key": secret}).get("/auth/whoami")
    assert resp.status_code == 401 and resp.json()["code"] == "CREDENTIALS_EXPIRED"
    for c in (fred, narrow, bearer, as_admin_user):
        await c.aclose()


async def test_bad_keys_are_throttled_per_source(fake_client: httpx.AsyncClient) -> None:
    anon = client_for(fake_client, {})
    for _ in range(10):
        resp = await anon.get("/auth/whoami", headers={"X-Service-Key": "dyk_guess"})
        assert resp.status_code == 401
    resp = await anon.get("/auth/whoami", headers={"X-Service-Key": "dyk_guess"})
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
    await anon.aclose()


# -- tokens ------------------------------------------------------------------------------


async def test_tokens_expire_and_are_revocable(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    resp = await fake_client.post("/auth/token", json={"expires_in": 120})
    assert resp.status_code == 201
    issued = resp.json()
    assert issued["token_type"] == "bearer" and 115 <= issued["expires_in"] <= 120
    bearer = client_for(fake_client, {"Authorization": f"Bearer {issued['token']}"})
    me = (await bearer.get("/auth/whoami")).json()
    assert me["credential"] == "token" and me["username"] == "admin"
    listed = (await fake_client.get("/auth/tokens")).json()["tokens"]
    assert [t["id"] for t in listed] == [issued["id"]] and "token" not in listed[0]
    assert (await fake_client.post("/auth/token", json={"expires_in": 10**9})).status_code == 400

    # Tampered, or signed with another secret: refused.
    tampered = issued["token"][:-2] + ("AA" if not issued["token"].endswith("AA") else "BB")
    resp = await bearer.get("/auth/whoami", headers={"Authorization": f"Bearer {tampered}"})
    assert resp.status_code == 401 and resp.json()["code"] == "INVALID_CREDENTIALS"
    # Expired: the signature is good, the time is past.
    auth = fake_world.app.state.services.auth
    old = IssuedToken(owner="admin", expires_at=datetime.now(UTC) - timedelta(seconds=5))
    await auth._tokens.insert(old)
    expired = auth._signer.sign(old.id, int(old.expires_at.timestamp()))
    resp = await bearer.get("/auth/whoami", headers={"Authorization": f"Bearer {expired}"})
    assert resp.json()["code"] == "CREDENTIALS_EXPIRED"

    assert (await fake_client.delete(f"/auth/tokens/{issued['id']}")).status_code == 204
    resp = await bearer.get("/auth/whoami")
    assert resp.status_code == 401 and resp.json()["code"] == "CREDENTIALS_REVOKED"
    assert (await fake_client.get("/auth/tokens")).json()["tokens"] == []
    await bearer.aclose()


async def test_the_token_secret_is_generated_once_0600_and_survives_restarts(
    tmp_path: Path,
) -> None:
    world = FakeWorld(tmp_path)
    secret_file = world.settings.token_secret_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    first = secret_file.read_bytes()
    async with world.app.router.lifespan_context(world.app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=world.app),
            base_url="http://t",
            headers=basic(*ADMIN),
        ) as client:
            token = (await client.post("/auth/token")).json()["token"]
    again = FakeWorld(tmp_path)
    assert secret_file.read_bytes() == first
    other = FakeWorld(tmp_path / "elsewhere")
    async with other.app.router.lifespan_context(other.app):  # closes what create_app opened
        assert other.settings.token_secret_file.read_bytes() != first
    async with again.app.router.lifespan_context(again.app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=again.app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            assert (await client.get("/auth/whoami")).status_code == 200


# -- revocation hook ---------------------------------------------------------------------


async def test_revocation_listeners_hear_every_shrink(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    heard: list[str] = []

    async def on_revoke(username: str) -> None:
        heard.append(username)

    auth = fake_world.app.state.services.auth
    auth.add_revocation_listener(on_revoke)
    auth.add_revocation_listener(lambda username: heard.append("sync:" + username))
    gus = await add_user(fake_client, "gus")
    key_id = (await gus.post("/servicekeys", json={})).json()["id"]
    token_id = (await gus.post("/auth/token")).json()["id"]
    assert heard == []
    assert (await gus.delete(f"/servicekeys/{key_id}")).status_code == 204
    assert heard == ["gus", "sync:gus"]
    assert (await gus.delete(f"/auth/tokens/{token_id}")).status_code == 204
    assert (await fake_client.patch("/accounts/gus", json={"role": "viewer"})).status_code == 200
    assert (
        await fake_client.patch("/accounts/gus", json={"password": "other-password"})
    ).status_code == 200
    assert (await fake_client.delete("/accounts/gus")).status_code == 204
    assert [h for h in heard if not h.startswith("sync:")] == ["gus"] * 5
    await gus.aclose()


# -- quotas ------------------------------------------------------------------------------


async def test_quotas_answer_409(fake_world: FakeWorld, fake_client: httpx.AsyncClient) -> None:
    hal = await add_user(
        fake_client,
        "hal",
        quota={"max_containers": 2, "max_cpus": 1.0, "max_memory": "256m"},
    )

    async def create(**resources: Any) -> httpx.Response:
        return await hal.post("/containers", json={"image": "busybox:test", "resources": resources})

    first = await create(cpus=0.5, memory="128m")
    assert first.status_code == 201
    resp = await create(cpus=0.75, memory="64m")
    assert resp.status_code == 409 and resp.json()["code"] == "QUOTA_EXCEEDED"
    assert resp.json()["details"]["quota"] == "max_cpus"
    resp = await create(cpus=0.5, memory="256m")
    assert resp.json()["details"]["quota"] == "max_memory"
    resp = await create()  # no limits asked: the defaults (1 CPU, 512m) count
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_cpus"
    assert (await create(cpus=0.5, memory="128m")).status_code == 201
    resp = await create(cpus=0.01, memory="8m")
    assert resp.json()["details"]["quota"] == "max_containers"
    # A PATCH that would go over is refused too; one within is fine.
    cuid = first.json()["cuid"]
    resp = await hal.patch(f"/containers/{cuid}", json={"resources": {"cpus": 0.75}})
    assert resp.status_code == 409
    assert (await hal.patch(f"/containers/{cuid}", json={"env": {"A": "1"}})).status_code == 200
    usage = (await hal.get("/accounts/me")).json()["usage"]
    assert usage == {"containers": 2, "cpus": 1.0, "memory_bytes": 256 * 1024**2}
    # Admins see and set quotas; lifting one lets the create through.
    resp = await fake_client.patch("/accounts/hal", json={"quota": {"max_containers": 5}})
    assert resp.json()["quota"]["max_cpus"] is None
    assert (await create()).status_code == 201
    admin_view = (await fake_client.get("/accounts/hal")).json()
    assert admin_view["usage"]["containers"] == 3
    await hal.aclose()


async def test_upload_quota_answers_409(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    ivy = await add_user(fake_client, "ivy", quota={"max_upload_bytes": 1000})
    cuid = (await ivy.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("big.bin", b"x" * 5000)
    resp = await ivy.post(
        f"/containers/{cuid}/upload-zip",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/zip"},
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "QUOTA_EXCEEDED"
    assert resp.json()["details"]["quota"] == "max_upload_bytes"
    await ivy.aclose()


# -- audit -------------------------------------------------------------------------------


async def test_the_audit_trail_records_every_accepted_change(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    jan = await add_user(fake_client, "jan")
    cuid = (await jan.post("/containers", json={"image": "busybox:test"})).json()["cuid"]
    assert (await jan.post(f"/containers/{cuid}/start")).status_code == 200
    key = (await jan.post("/servicekeys", json={"description": "ci"})).json()
    with_key = client_for(fake_client, {"X-Service-Key": key["key"]})
    assert (await with_key.post(f"/containers/{cuid}/stop")).status_code == 200
    assert (await jan.post(f"/containers/{cuid}/pause")).status_code == 422  # outcome kept
    await jan.get("/containers")  # reads are not audited
    anon = client_for(fake_client, basic("jan", "wrong-password"))
    assert (await anon.post(f"/containers/{cuid}/start")).status_code == 401  # not accepted
    before_delete = datetime.now(UTC)
    assert (await jan.delete(f"/containers/{cuid}")).status_code == 204

    entries = await audit(fake_client, user="jan")
    steps = [(e["method"], e["action"], e["status"]) for e in reversed(entries)]
    assert steps == [
        ("POST", "create_container", 201),
        ("POST", "start_container", 200),
        ("POST", "create_key", 201),
        ("POST", "stop_container", 200),
        ("POST", "pause_container", 422),
        ("DELETE", "delete_container", 204),
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["create_container"]["resource"] == cuid  # from the 201's answer
    assert by_action["create_key"]["resource"] == key["id"]
    assert by_action["stop_container"]["credential"] == f"key:{key['id']}"
    assert by_action["start_container"]["route"] == "/containers/{cuid}/start"
    assert all(e["request_id"] and e["at"] and e["source"] for e in entries)
    admin_entries = await audit(fake_client, user="admin", action="create_account")
    assert [e["resource"] for e in admin_entries] == ["jan"]

    # Filters and keyset pagination.
    assert len(await audit(fake_client, resource=cuid)) == 5
    since = await audit(fake_client, user="jan", since=before_delete.isoformat())
    assert [e["action"] for e in since] == ["delete_container"]
    until = await audit(fake_client, user="jan", until=before_delete.isoformat())
    assert len(until) == 5
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await fake_client.get("/audit", params=params)).json()
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 7
    assert (await fake_client.get("/audit", params={"cursor": "junk"})).status_code == 400
    naive = await fake_client.get("/audit", params={"since": "2024-01-01T00:00:00"})
    assert naive.status_code == 400
    # Only admins read it.
    resp = await jan.get("/audit")
    assert resp.status_code == 403
    for c in (jan, with_key, anon):
        await c.aclose()


async def test_a_refused_change_is_audited_with_its_outcome(
    fake_client: httpx.AsyncClient,
) -> None:
    vic = await add_user(fake_client, "vic", "viewer")
    assert (await vic.post("/containers", json={"image": "busybox:test"})).status_code == 403
    entries = await audit(fake_client, user="vic")
    assert [(e["action"], e["status"]) for e in entries] == [("create_container", 403)]
    await vic.aclose()


@pytest.mark.parametrize("unknown_user", [True, False])
async def test_unknown_users_cost_a_hash_check_too(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient, unknown_user: bool
) -> None:
    auth = fake_world.app.state.services.auth
    calls: list[str] = []
    original = auth._hasher.verify

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return bool(original(stored, password))

    auth._hasher.verify = counting
    user = "ghost" if unknown_user else "admin"
    resp = await client_for(fake_client, basic(user, "not-the-password")).get("/auth/whoami")
    assert resp.status_code == 401 and resp.json()["code"] == "INVALID_CREDENTIALS"
    assert len(calls) == 1


async def test_no_key_or_token_names_a_role_wider_than_its_maker(
    fake_client: httpx.AsyncClient,
) -> None:
    """Issue 9: a `user` (or a custom role with keys:manage) asking for a key or token with
    role `admin` is refused with 403, and nothing is made."""
    sam = await add_user(fake_client, "sam")
    for path, body in (
        ("/servicekeys", {"description": "ci", "role": "admin"}),
        ("/auth/token", {"expires_in": 600, "role": "admin"}),
    ):
        resp = await sam.post(path, json=body)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == "forbidden" and resp.json()["code"] == "PERMISSION_DENIED"
    assert (await sam.get("/servicekeys")).json()["servicekeys"] == []
    # Narrower is fine.
    assert (await sam.post("/servicekeys", json={"role": "viewer"})).status_code == 201
    assert (await sam.post("/auth/token", json={"role": "viewer"})).status_code == 201
    await sam.aclose()
