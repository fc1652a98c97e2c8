"""The routing of container calls to their engines (domain/engines/routing.py).

Fakes stand for the engines and Compose (what is tested is the routing): a local
container's calls are a dict lookup (its record is read once, a pinned create never),
another engine's go to that engine's own clients, built once; an unreachable engine's
containers answer 503 with Retry-After at once, and nobody else is affected."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain.engines.models import LOCAL
from dockyard.domain.engines.routing import (
    EngineParts,
    EngineRoutes,
    RoutingCompose,
    RoutingEngine,
)
from dockyard.domain.models import Status
from dockyard.domain.ports import ManagedContainer
from dockyard.errors import EngineUnavailableError
from tests.fakes import FakeCompose, FakeEngine

DIR = Path("/nowhere")


class Factory:
    """Builds a fake engine's parts, counting how often."""

    def __init__(self) -> None:
        self.engines: dict[str, FakeEngine] = {}
        self.opened: list[str] = []
        self.closed: list[str] = []

    async def open(self, engine_id: str) -> EngineParts:
        self.opened.append(engine_id)
        engine = self.engines.setdefault(engine_id, FakeEngine())
        return EngineParts(engine_id, engine, FakeCompose(engine), remote=True)

    async def close(self, parts: EngineParts) -> None:
        self.closed.append(parts.engine_id)


class World:
    def __init__(self) -> None:
        self.local = FakeEngine()
        self.records: dict[str, str] = {}  # cuid -> engine, as the store has them
        self.reads: list[str] = []
        self.reachable: dict[str, bool] = {}
        self.factory = Factory()
        self.routes = EngineRoutes(
            EngineParts(LOCAL, self.local, FakeCompose(self.local), remote=False),
            where=self.where,
            factory=self.factory,
            reachable=lambda engine_id: self.reachable.get(engine_id),
        )
        self.engine = RoutingEngine(self.routes)
        self.compose = RoutingCompose(self.routes)

    async def where(self, cuid: str) -> str | None:
        self.reads.append(cuid)
        return self.records.get(cuid)

    async def up(self, cuid: str) -> None:
        await self.compose.write(DIR, {"name": cuid, "services": {"app": {"image": "x"}}})
        await self.compose.up(cuid, DIR)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_local_container_reads_its_record_once(world: World) -> None:
    world.records["c1"] = LOCAL
    await world.up("c1")
    for _ in range(3):
        state = await world.engine.inspect("c1")
        assert state is not None and state.status is Status.RUNNING
    assert world.reads == ["c1"] and world.factory.opened == []


async def test_a_pinned_create_reads_no_record(world: World) -> None:
    world.routes.pin("c2", LOCAL)
    await world.up("c2")
    assert await world.engine.inspect("c2") is not None
    assert world.reads == []


async def test_another_engines_container_goes_to_that_engine(world: World) -> None:
    world.records["r1"] = "eng1"
    await world.up("r1")
    remote = world.factory.engines["eng1"]
    assert "r1" in remote.containers and "r1" not in world.local.containers
    assert await world.engine.inspect("r1") is not None
    # No host pid from another host (metrics then ask that engine for its stats).
    proc = await world.engine.process("r1")
    assert proc is not None and proc.pid == 0
    assert await world.engine.stats_once(proc.container_id) is not None
    assert remote.stats_calls == {"r1": 1} and world.local.stats_calls == {}
    await world.compose.down("r1", DIR)
    assert "r1" not in remote.containers
    assert world.factory.opened == ["eng1"]  # its clients are built once


async def test_an_unknown_cuid_is_the_local_engines_and_not_remembered(world: World) -> None:
    assert await world.engine.inspect("nope") is None
    world.records["nope"] = "eng1"  # created since (by another path): found now
    await world.up("nope")
    assert "nope" in world.factory.engines["eng1"].containers


async def test_an_unreachable_engine_answers_503_at_once_and_others_work(world: World) -> None:
    world.records.update({"r1": "eng1", "c1": LOCAL})
    await world.up("r1")
    await world.up("c1")
    world.reachable["eng1"] = False
    with pytest.raises(EngineUnavailableError) as caught:
        await world.engine.inspect("r1")
    assert caught.value.code == "ENGINE_UNREACHABLE" and caught.value.retry_after
    with pytest.raises(EngineUnavailableError):
        await world.compose.action("r1", DIR, "stop")
    assert await world.engine.inspect("c1") is not None
    world.reachable["eng1"] = True
    assert await world.engine.inspect("r1") is not None


async def test_calls_about_no_container_are_the_local_engines(world: World) -> None:
    world.local.containers["c9"] = ManagedContainer("c9", {}, Status.RUNNING)
    assert [m.cuid for m in await world.engine.list_managed()] == ["c9"]
    assert await world.engine.version() == "fake-engine"
    assert world.factory.opened == []


async def test_a_changed_engine_gets_new_clients(world: World) -> None:
    world.records["r1"] = "eng1"
    await world.up("r1")
    await world.routes.drop("eng1")
    assert world.factory.closed == ["eng1"]
    assert await world.engine.inspect("r1") is not None
    assert world.factory.opened == ["eng1", "eng1"]


async def test_replicas_of_a_page_are_asked_of_each_engine_once(world: World) -> None:
    world.records.update({"r1": "eng1", "c1": LOCAL, "r2": "eng2"})
    for cuid in ("r1", "c1", "r2"):
        await world.up(cuid)
    world.reachable["eng2"] = False  # left out, the page still answers
    seen = await world.engine.replicas_of_many(["r1", "c1", "r2"])
    assert sorted(seen) == ["c1", "r1"]
    assert world.factory.engines["eng1"].replica_list_calls == 1
    assert world.local.replica_list_calls == 1
