"""Registry credentials: sealed at rest, resolved only for the registry they belong to,
seen by their owner (and everyone, when an admin shares them)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from dockyard.adapters.crypto import AesGcmBox
from dockyard.domain.access.permissions import Principal
from dockyard.domain.images.ports import RegistryAuth
from dockyard.domain.images.registries import RegistryService, normalize_server
from dockyard.errors import (
    ForbiddenError,
    NotFoundError,
    StorageIOError,
    ValidationError,
)
from dockyard.store import Database
from dockyard.store.registries import SqlRegistryRepository
from dockyard.store.tables import registries

ADMIN = Principal("root", "admin")
AMY = Principal("amy", "user")
BEN = Principal("ben", "user")
VIEWER = Principal("vic", "viewer")
SECRET = "amy-Registry-Password-7f3a"


def service(db: Database) -> RegistryService:
    return RegistryService(SqlRegistryRepository(db), AesGcmBox.from_secret(os.urandom(32)))


def test_sealing_round_trip_bound_to_its_context() -> None:
    box = AesGcmBox.from_secret(os.urandom(32))
    sealed = box.seal(b"hunter2", b"row-1")
    assert b"hunter2" not in sealed and sealed != box.seal(b"hunter2", b"row-1")  # fresh nonce
    assert box.open(sealed, b"row-1") == b"hunter2"
    with pytest.raises(StorageIOError):
        box.open(sealed, b"row-2")  # copied into another row: does not open
    with pytest.raises(StorageIOError):
        AesGcmBox.from_secret(os.urandom(32)).open(sealed, b"row-1")  # another key


async def test_the_stored_bytes_do_not_hold_the_password(db: Database) -> None:
    registries_ = service(db)
    made = await registries_.create(
        AMY, server="https://127.0.0.1:5000/", username="amy", password=SECRET, shared=False
    )
    assert made.server == "127.0.0.1:5000"
    async with db.reading() as conn:
        rows = (await conn.execute(select(registries))).all()
    assert len(rows) == 1
    for value in rows[0]:
        raw = value if isinstance(value, bytes) else str(value).encode()
        assert SECRET.encode() not in raw
    auth = await registries_.resolve("amy", "127.0.0.1:5000/amy/app:1")
    assert auth == RegistryAuth("127.0.0.1:5000", "amy", SECRET)


async def test_credentials_are_resolved_for_their_registry_only(db: Database) -> None:
    registries_ = service(db)
    own = await registries_.create(
        AMY, server="127.0.0.1:5000", username="amy", password=SECRET, shared=False
    )
    hub = await registries_.create(
        ADMIN, server="index.docker.io", username="org", password="hub-token", shared=True
    )
    bens = await registries_.create(
        BEN, server="127.0.0.1:5000", username="ben", password="ben-pass", shared=False
    )
    # By id: one's own or a shared one, for the ref's registry.
    assert (await registries_.resolve("amy", "127.0.0.1:5000/a:1", registry_id=own.id)) == (
        RegistryAuth("127.0.0.1:5000", "amy", SECRET)
    )
    assert (await registries_.resolve("amy", "org/app", registry_id=hub.id)) == RegistryAuth(
        "docker.io", "org", "hub-token"
    )
    with pytest.raises(NotFoundError):  # another account's: as if it did not exist
        await registries_.resolve("amy", "127.0.0.1:5000/a:1", registry_id=bens.id)
    with pytest.raises(ValidationError) as mismatch:  # never sent to another registry
        await registries_.resolve("amy", "evil.example.com/a:1", registry_id=own.id)
    assert mismatch.value.code == "REGISTRY_MISMATCH"
    # By the ref's registry: one's own first, then a shared one, else none.
    assert (await registries_.resolve("ben", "127.0.0.1:5000/b")) == RegistryAuth(
        "127.0.0.1:5000", "ben", "ben-pass"
    )
    assert (await registries_.resolve("ben", "busybox")) == RegistryAuth(
        "docker.io", "org", "hub-token"
    )
    assert await registries_.resolve("ben", "ghcr.io/x/y") is None
    # Inline ones go to the ref's registry.
    inline = RegistryAuth("ignored", "me", "pw")
    assert await registries_.resolve("ben", "ghcr.io/x/y", inline=inline) == RegistryAuth(
        "ghcr.io", "me", "pw"
    )


async def test_who_sees_and_manages_what(db: Database) -> None:
    registries_ = service(db)
    own = await registries_.create(
        AMY, server="r.example", username="a", password="p", shared=False
    )
    shared = await registries_.create(
        ADMIN, server="s.example", username="s", password="p", shared=True
    )
    await registries_.create(ADMIN, server="t.example", username="t", password="p", shared=False)
    await registries_.create(BEN, server="b.example", username="b", password="p", shared=False)
    assert [r.server for r in await registries_.list(AMY)] == ["r.example", "s.example"]
    assert len(await registries_.list(ADMIN)) == 4
    with pytest.raises(ForbiddenError) as refused:
        await registries_.create(AMY, server="x.example", username="a", password="p", shared=True)
    assert refused.value.code == "SHARED_REGISTRY_ADMIN_ONLY"
    with pytest.raises(ForbiddenError):
        await registries_.list(VIEWER)  # viewers hold no registries:read
    with pytest.raises(NotFoundError):
        await registries_.delete(BEN, own.id)
    with pytest.raises(ForbiddenError):
        await registries_.delete(AMY, shared.id)
    await registries_.delete(AMY, own.id)
    await registries_.delete(ADMIN, shared.id)
    assert await registries_.list(AMY) == []


@pytest.mark.parametrize("server", ["", "a b", "http://", "x/y/z", "-bad.example", "a" * 300])
def test_a_server_is_a_host_and_port(server: str) -> None:
    with pytest.raises(ValidationError) as refused:
        normalize_server(server)
    assert refused.value.code == "INVALID_REGISTRY_SERVER"
