"""The events table against SQLite and a real PostgreSQL (started by scripts/run-tests.sh)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.domain.observe.events import Event, EventQuery
from dockyard.store import Database, SqlEventRepository


@pytest.fixture
def repo(db: Database) -> SqlEventRepository:
    return SqlEventRepository(db)


def event(
    n: int, *, owner: str = "alice", type_: str = "start", at: datetime | None = None
) -> Event:
    return Event(
        type=type_,
        source="engine",
        cuid=f"c{n % 3}",
        owner=owner,
        time=at or datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        details={"n": n},
    )


async def test_append_and_query(repo: SqlEventRepository) -> None:
    batch = [
        event(n, owner="bob" if n % 2 else "alice", type_="die" if n % 4 == 0 else "start")
        for n in range(12)
    ]
    last = await repo.append(batch)
    assert last == batch[-1].seq == await repo.last_seq()
    assert [e.seq for e in batch] == sorted(e.seq for e in batch)  # in order, one each

    newest = await repo.query(EventQuery(limit=3))
    assert [e.details["n"] for e in newest] == [11, 10, 9]
    assert newest[0].time == batch[-1].time and newest[0].time.tzinfo is not None
    oldest = await repo.query(EventQuery(limit=2, oldest_first=True, after_seq=batch[4].seq))
    assert [e.details["n"] for e in oldest] == [5, 6]
    alice = await repo.query(EventQuery(owner="alice", limit=100))
    assert {e.owner for e in alice} == {"alice"} and len(alice) == 6
    dies = await repo.query(EventQuery(types=("die",), cuid="c0", limit=100))
    assert [e.details["n"] for e in dies] == [0]  # n % 4 == 0 and n % 3 == 0: 0 only
    window = await repo.query(
        EventQuery(since=batch[3].time, until=batch[5].time, before_seq=batch[5].seq, limit=100)
    )
    assert [e.details["n"] for e in window] == [4, 3]


async def test_trim_keeps_the_newest_and_never_reuses_a_seq(repo: SqlEventRepository) -> None:
    await repo.append([event(n) for n in range(10)])
    top = await repo.last_seq()
    assert await repo.trim(4) == 6
    assert await repo.trim(4) == 0
    assert [e.seq for e in await repo.query(EventQuery(limit=100))] == list(range(top, top - 4, -1))
    assert await repo.trim(100) == 0  # fewer than kept: nothing to do
    assert await repo.append([event(99)]) == top + 1
