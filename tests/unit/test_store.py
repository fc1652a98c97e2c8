"""The store against SQLite and a real PostgreSQL (started by scripts/run-tests.sh)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dockyard.domain.models import ContainerRecord, ContainerSpec, Status, new_cuid
from dockyard.domain.ports import ContainerQuery
from dockyard.store import Database, SqlContainerRepository


@pytest.fixture
def repo(db: Database) -> SqlContainerRepository:
    return SqlContainerRepository(db)


def record(
    owner: str = "alice",
    tags: list[str] | None = None,
    image: str = "img:1",
    status: Status = Status.CREATED,
) -> ContainerRecord:
    spec = ContainerSpec(image=image, tags=tags or [], env={"SECRET": "v"})
    return ContainerRecord(cuid=new_cuid(), owner=owner, spec=spec, status=status)


async def test_round_trip(repo: SqlContainerRepository) -> None:
    saved = await repo.insert(record(tags=["a", "b"]))
    loaded = await repo.get(saved.cuid)
    assert loaded is not None
    assert loaded.spec == saved.spec and loaded.seq == saved.seq > 0
    assert loaded.created_at == saved.created_at and loaded.created_at.tzinfo is not None
    loaded.status = Status.RUNNING
    loaded.exit_code = 3
    await repo.save(loaded)
    again = await repo.get(saved.cuid)
    assert again is not None and again.status is Status.RUNNING and again.exit_code == 3
    await repo.delete(saved.cuid)
    assert await repo.get(saved.cuid) is None


async def test_filters(repo: SqlContainerRepository) -> None:
    a = await repo.insert(record(tags=["web", "prod"], image="nginx:1"))
    b = await repo.insert(record(tags=["web_x"], status=Status.RUNNING))
    c = await repo.insert(record(owner="bob", tags=["web"], status=Status.PAUSED))

    async def cuids(**kw: object) -> list[str]:
        return [r.cuid for r in await repo.query(ContainerQuery(**kw))]  # type: ignore[arg-type]

    assert await cuids() == [c.cuid, b.cuid, a.cuid]
    assert await cuids(owner="alice") == [b.cuid, a.cuid]
    assert await cuids(tag="web") == [c.cuid, a.cuid]
    assert await cuids(tag="web%") == []  # LIKE wildcards are taken literally
    assert await cuids(tag="web_x") == [b.cuid]
    assert await cuids(statuses=[Status.RUNNING, Status.PAUSED]) == [c.cuid, b.cuid]
    assert await cuids(image="nginx:1") == [a.cuid]


async def test_pagination_stays_correct_under_inserts_and_deletes(
    repo: SqlContainerRepository,
) -> None:
    made = [await repo.insert(record()) for _ in range(25)]
    seen: list[str] = []
    before: int | None = None
    page_no = 0
    while True:
        rows = await repo.query(ContainerQuery(limit=10, before_seq=before))
        seen += [r.cuid for r in rows]
        if len(rows) < 10:
            break
        before = rows[-1].seq
        page_no += 1
        if page_no == 1:
            # Between pages: new ones arrive (newer, so not in later pages) and one
            # not yet seen is deleted.
            await asyncio.gather(*(repo.insert(record()) for _ in range(5)))
            await repo.delete(made[3].cuid)
    expected = [r.cuid for r in reversed(made) if r.cuid != made[3].cuid]
    assert seen == expected


async def test_concurrent_writers(repo: SqlContainerRepository) -> None:
    rows = await asyncio.gather(*(repo.insert(record()) for _ in range(50)))
    assert len({r.seq for r in rows}) == 50
    assert len(await repo.all()) == 50


async def test_state_only_saves_keep_the_spec(repo: SqlContainerRepository) -> None:
    spec = ContainerSpec(image="img:1", ports=[{"host": 8080, "container": 80}])
    held = await repo.insert(ContainerRecord(cuid=new_cuid(), owner="a", spec=spec))

    # A state update from an event must not undo a spec change saved meanwhile.
    stale = await repo.get(held.cuid)
    assert stale is not None
    fresh = stale.model_copy(update={"spec": spec.model_copy(update={"env": {"NEW": "1"}})})
    await repo.save(fresh)
    stale.status = Status.RUNNING
    stale.restart_count = 2
    await repo.save_state(stale)
    final = await repo.get(held.cuid)
    assert final is not None and final.status is Status.RUNNING and final.spec.env == {"NEW": "1"}
    assert final.restart_count == 2
    repo._cache.clear()  # and from the database itself
    again = await repo.get(held.cuid)
    assert again is not None and again.restart_count == 2 and again.spec.ports[0].host == 8080


@pytest.mark.parametrize(("setting", "expected"), [(None, 2), ("NORMAL", 1), ("EXTRA", 3)])
async def test_sqlite_durability_is_full_unless_relaxed(
    tmp_path: Path, setting: str | None, expected: int
) -> None:
    """SPEC §9: the database is written with full durability by default."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    db = Database(url) if setting is None else Database(url, sqlite_synchronous=setting)
    try:
        async with db.reading() as conn:
            level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
        assert level == expected
    finally:
        await db.close()


def test_an_unknown_durability_level_is_refused() -> None:
    with pytest.raises(ValueError, match="FULL"):
        Database("sqlite+aiosqlite:///x.db", sqlite_synchronous="SOMETIMES")


async def test_a_creates_constraints_are_kept_on_the_record(db: Database) -> None:
    """Migration 0011: the create's label constraints survive the store (no cache)."""
    repo = SqlContainerRepository(db, cache=False)
    asked = record()
    asked.constraints = {"region": "eu", "disk": "ssd"}
    saved = await repo.insert(asked)
    plain = await repo.insert(record())
    loaded = await repo.get(saved.cuid)
    assert loaded is not None and loaded.constraints == {"region": "eu", "disk": "ssd"}
    none = await repo.get(plain.cuid)
    assert none is not None and none.constraints == {}
    loaded.status = Status.RUNNING
    await repo.save(loaded)
    again = await repo.get(saved.cuid)
    assert again is not None and again.constraints == {"region": "eu", "disk": "ssd"}
