"""Leases and the cross-process lock (issue 12: several Dockyard processes on one
PostgreSQL): the store's leases on both databases, ``Database.exclusive`` on PostgreSQL,
and the ``LeaseKeeper`` starting and stopping duties as its leases come and go."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.domain.leases import Duty, LeaseKeeper
from dockyard.errors import StoreBusyError
from dockyard.store import Database
from dockyard.store.leases import SqlLeaseRepository


async def test_a_lease_has_one_holder_until_it_expires_or_is_let_go(db: Database) -> None:
    leases = SqlLeaseRepository(db)
    assert await leases.hold("engine:local", "a", 60)
    assert not await leases.hold("engine:local", "b", 60)
    assert await leases.hold("engine:local", "a", 60)  # renewed by its holder
    assert await leases.live("engine:") == {"engine:local": "a"}

    await leases.release("engine:local", "b")  # not b's to let go
    assert not await leases.hold("engine:local", "b", 60)
    await leases.release("engine:local", "a")
    assert await leases.hold("engine:local", "b", 60)

    assert await leases.hold("deliveries", "b", -1)  # taken, and already expired
    assert "deliveries" not in await leases.live("")
    assert await leases.hold("deliveries", "a", 60)  # an expired lease is anyone's
    assert await leases.live("") == {"engine:local": "b", "deliveries": "a"}


async def test_the_prefix_of_live_is_not_a_pattern(db: Database) -> None:
    leases = SqlLeaseRepository(db)
    assert await leases.hold("instance:a_b", "x", 60)
    assert await leases.hold("instanceXa", "y", 60)
    assert await leases.live("instance:") == {"instance:a_b": "x"}
    assert await leases.live("instance:a_") == {"instance:a_b": "x"}


async def test_concurrent_takers_get_one_holder(db: Database) -> None:
    leases = SqlLeaseRepository(db)
    got = await asyncio.gather(*(leases.hold("timers", f"p{i}", 60) for i in range(8)))
    assert got.count(True) == 1


async def test_exclusive_lets_one_holder_in_at_a_time_across_connections(db: Database) -> None:
    if not db.shared:
        pytest.skip("SQLite: one process, whose own locks serialise")
    inside = asyncio.Event()
    leave = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with db.exclusive("quota:ann"):
            order.append("first in")
            inside.set()
            await leave.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with db.exclusive("quota:ann"):
            order.append("second in")

    async def other_name() -> None:
        await inside.wait()
        async with db.exclusive("quota:bob"):
            order.append("bob in")
        leave.set()

    await asyncio.gather(first(), second(), other_name())
    assert order == ["first in", "bob in", "first out", "second in"]


async def test_exclusive_waits_no_longer_than_told(db: Database) -> None:
    if not db.shared:
        pytest.skip("SQLite: one process, whose own locks serialise")
    inside = asyncio.Event()
    done = asyncio.Event()

    async def holder() -> None:
        async with db.exclusive("placement"):
            inside.set()
            await done.wait()

    task = asyncio.create_task(holder())
    await inside.wait()
    with pytest.raises(StoreBusyError):
        async with db.exclusive("placement", wait=0.2):
            pass
    done.set()
    await task
    async with db.exclusive("placement", wait=0.2):  # free again
        pass


class _Leases:
    """Leases in memory, for the keeper's logic: ``taken`` by someone else, or down."""

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}
        self.down = False

    async def hold(self, name: str, holder: str, ttl: float) -> bool:
        if self.down:
            raise OSError("store down")
        return self.holders.setdefault(name, holder) == holder

    async def release(self, name: str, holder: str) -> None:
        if self.holders.get(name) == holder:
            del self.holders[name]

    async def live(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self.holders.items() if k.startswith(prefix)}


def _duty(name: str, log: list[str]) -> Duty:
    async def start() -> None:
        log.append(f"start {name}")

    async def stop() -> None:
        log.append(f"stop {name}")

    return Duty(name, start, stop)


async def test_the_keeper_runs_a_duty_while_it_holds_its_lease() -> None:
    repo, log = _Leases(), []
    repo.holders["deliveries"] = "other"
    now = [0.0]
    keeper = LeaseKeeper(
        repo,
        "me",
        [_duty("engine:local", log), _duty("deliveries", log)],
        ttl=9,
        clock=lambda: now[0],
    )
    await keeper.tick()
    assert log == ["start engine:local"]
    assert keeper.holds("instance:me") and keeper.holds("engine:local")
    assert await keeper.live_instances() == {"me"}

    del repo.holders["deliveries"]  # the other process let it go
    await keeper.tick()
    assert log[-1] == "start deliveries"

    repo.down = True  # renewals fail: duties go on while the lease surely holds
    now[0] = 5.0
    await keeper.tick()
    assert keeper.holds("deliveries") and log[-1] == "start deliveries"
    now[0] = 7.0  # past two thirds of the time to live: another may take it soon
    await keeper.tick()
    assert not keeper.holds("deliveries") and {"stop engine:local", "stop deliveries"} <= set(log)

    repo.down = False
    repo.holders["engine:local"] = "other"  # taken over meanwhile
    await keeper.tick()
    assert log[-1] == "start deliveries" and not keeper.holds("engine:local")
    await keeper.stop()
    assert log[-1] == "stop deliveries"
    assert repo.holders == {"engine:local": "other"}  # its own leases let go at once


async def test_duties_that_come_and_go_gain_and_lose_their_leases() -> None:
    """One duty per remote engine (``engine:<id>``): two keepers split them, and an
    engine removed from the registry loses its duty and its lease at the next round."""
    repo, log_a, log_b = _Leases(), [], []
    engines = ["e1", "e2"]

    def keeper(name: str, log: list[str]) -> LeaseKeeper:
        async def more() -> list[Duty]:
            return [_duty(f"engine:{one}", log) for one in engines]

        made = LeaseKeeper(repo, name, [], ttl=9)
        made.more = more
        return made

    a, b = keeper("a", log_a), keeper("b", log_b)
    repo.holders["engine:e2"] = "b"  # b was first to e2
    await a.tick()
    await b.tick()
    assert a.held() == ["engine:e1"] and b.held() == ["engine:e2"]
    assert log_a == ["start engine:e1"] and log_b == ["start engine:e2"]

    engines.append("e3")  # added at run time: whoever looks first takes it
    await b.tick()
    await a.tick()
    assert b.held() == ["engine:e2", "engine:e3"] and a.held() == ["engine:e1"]

    engines.remove("e2")  # removed: stopped, and its lease let go at once
    await b.tick()
    assert log_b[-1] == "stop engine:e2" and b.held() == ["engine:e3"]
    assert "engine:e2" not in repo.holders

    async def broken() -> list[Duty]:
        raise OSError("store down")

    b.more = broken  # the registry cannot be read: the duties stay as they were
    await b.tick()
    assert b.held() == ["engine:e3"]
    await a.stop()
    await b.stop()
    assert log_a[-1] == "stop engine:e1" and log_b[-1] == "stop engine:e3"
    assert repo.holders == {}
