"""Host port allocation (issue 11) against the real store: SQLite, and PostgreSQL when
DOCKYARD_TEST_PG_URL is set. The primary key is the lock, so concurrent claims never
share a port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dockyard.domain.containers.ports import (
    PortAllocator,
    PortRange,
    exposed_ports,
    url_of,
    with_exposed,
)
from dockyard.domain.models import Port, new_cuid
from dockyard.errors import ConflictError, ValidationError
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.ports import SqlPortAllocations
from tests.conftest import make_settings


def allocator(db: Database, first: int = 20000, last: int = 20999, **kw: object) -> PortAllocator:
    return PortAllocator(SqlPortAllocations(db), PortRange(first, last), **kw)  # type: ignore[arg-type]


async def test_fifty_concurrent_claims_get_fifty_ports(db: Database) -> None:
    # Two allocators (two cursors starting anywhere) over one table: as two processes.
    one, two = allocator(db, 20000, 20059), allocator(db, 20000, 20059)
    wanted = [Port(container=8000)]
    results = await asyncio.gather(
        *((one if i % 2 else two).claim(new_cuid(), "local", wanted) for i in range(50))
    )
    hosts = [ports[0].host for ports, _ in results]
    assert len(set(hosts)) == 50
    assert all(h is not None and 20000 <= h <= 20059 for h in hosts)


async def test_a_full_range_is_a_clear_conflict(db: Database) -> None:
    small = allocator(db, 20000, 20001)
    for _ in range(2):
        await small.claim(new_cuid(), "local", [Port(container=80)])
    with pytest.raises(ConflictError) as caught:
        await small.claim(new_cuid(), "local", [Port(container=80)])
    assert caught.value.code == "NO_FREE_PORT"
    # udp is another port space
    ports, _ = await small.claim(new_cuid(), "local", [Port(container=53, protocol="udp")])
    assert ports[0].host in (20000, 20001)


async def test_fixed_ports_and_drawn_ones_never_collide(db: Database) -> None:
    alloc = allocator(db, 20000, 20002)
    fixed = new_cuid()
    await alloc.claim(fixed, "local", [Port(host=20001, container=80)])
    drawn = set()
    for _ in range(2):
        ports, _ = await alloc.claim(new_cuid(), "local", [Port(container=80)])
        drawn.add(ports[0].host)
    assert drawn == {20000, 20002}
    with pytest.raises(ConflictError) as caught:
        await alloc.claim(new_cuid(), "local", [Port(host=20001, container=81)])
    assert caught.value.code == "PORT_IN_USE"
    # Another engine is another host.
    await alloc.claim(new_cuid(), "remote", [Port(host=20001, container=81)])


async def test_a_failed_claim_keeps_nothing(db: Database) -> None:
    store = SqlPortAllocations(db)
    alloc = PortAllocator(store, PortRange(20000, 20099))
    await alloc.claim(new_cuid(), "local", [Port(host=20050, container=1)])
    cuid = new_cuid()
    wanted = [Port(container=80), Port(host=20040, container=81), Port(host=20050, container=82)]
    with pytest.raises(ConflictError):
        await alloc.claim(cuid, "local", wanted)
    assert await store.held(cuid) == []


async def test_release_and_replace(db: Database) -> None:
    store = SqlPortAllocations(db)
    alloc = PortAllocator(store, PortRange(20000, 20099))
    cuid = new_cuid()
    ports, fresh = await alloc.claim(
        cuid, "local", [Port(container=80), Port(host=20070, container=81)]
    )
    assert len(fresh) == 2
    # A PATCH of the ports: a null host keeps what it had, a fixed one it holds is fine.
    again, fresh = await alloc.claim(
        cuid, "local", [Port(container=80), Port(host=20071, container=82)], current=ports
    )
    assert again[0].host == ports[0].host and fresh == {(20071, "tcp")}
    await alloc.keep_only(cuid, again)
    assert {(a.host_port, a.container_port) for a in await store.held(cuid)} == {
        (ports[0].host, 80),
        (20071, 82),
    }
    assert await store.holder("local", 20070, "tcp") is None  # released
    await alloc.release(cuid)
    assert await store.held(cuid) == []


async def test_ports_the_host_holds_are_skipped(db: Database) -> None:
    busy = {20000, 20001}
    alloc = allocator(db, 20000, 20002, probe=lambda port, proto: port not in busy)
    for _ in range(3):
        ports, _ = await alloc.claim(new_cuid(), "local", [Port(container=80)])
        if ports[0].host == 20002:
            break
    else:
        raise AssertionError("never drew the free port")
    with pytest.raises(ConflictError):
        await alloc.claim(new_cuid(), "local", [Port(container=80)])


async def test_backfill_claims_what_older_records_publish(db: Database) -> None:
    alloc = allocator(db)
    first, second = new_cuid(), new_cuid()
    assert await alloc.backfill(first, "local", [Port(host=8080, container=80)]) == []
    assert await alloc.backfill(first, "local", [Port(host=8080, container=80)]) == []
    assert await alloc.backfill(second, "local", [Port(host=8080, container=80)]) == [(8080, "tcp")]


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("20000-29999", True),
        (" 1024 - 1024 ", True),
        ("1023-2000", False),
        ("30000-20000", False),
        ("60000-70000", False),
        ("2000-3000", False),  # holds 2375 and 2376
        ("20000", False),
        ("a-b", False),
    ],
)
def test_port_range_values(text: str, ok: bool) -> None:
    if ok:
        PortRange.parse(text, reserved=(2375, 2376, 8080))
    else:
        with pytest.raises(ValueError):
            PortRange.parse(text, reserved=(2375, 2376, 8080))


def test_port_range_is_checked_at_start(tmp_path: Path) -> None:
    assert make_settings(tmp_path).port_range == "20000-29999"
    for bad, port in (("8000-9000", 8080), ("20000-29999", 25000), ("100-2000", 8080)):
        with pytest.raises(ValueError, match="PORT_RANGE"):
            make_settings(tmp_path, port_range=bad, port=port)
    assert isinstance(make_settings(tmp_path, port_range="40000-40010"), Settings)


def test_exposed_ports_and_urls() -> None:
    got = exposed_ports(["8000/tcp", "53/udp", "9/sctp", "x/tcp", "70000/tcp", "81"])
    assert [(p.container, p.protocol) for p in got] == [(8000, "tcp"), (53, "udp"), (81, "tcp")]
    mine = [Port(host=9000, container=8000)]
    assert [p.host for p in with_exposed(mine, got)] == [9000, None, None]
    with pytest.raises(ValidationError):
        with_exposed([], [Port(container=n) for n in range(1, 70)])
    assert url_of("dock.example", Port(host=20001, container=80)) == "http://dock.example:20001"
    assert url_of("::1", Port(host=20001, container=80)) == "http://[::1]:20001"
    assert url_of("h", Port(host=20001, container=53, protocol="udp")) is None
