"""Placement (domain/engines/placement.py): every refusal, the spread, a named engine,
constraints; the sums it shares with /cluster/info; and creates through the application
(a fake local engine) that name an engine, constraints, or meet a declared capacity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from dockyard.domain.engines.cluster import ContainerUse, Reserved, cluster_info
from dockyard.domain.engines.models import (
    EngineFacts,
    EngineHealth,
    EngineKind,
    EngineRecord,
    EngineStatus,
    EngineView,
)
from dockyard.domain.engines.placement import (
    EngineRoom,
    Need,
    PlacementRequest,
    choose,
    rooms_of,
    sums_matter,
)
from dockyard.domain.models import Resources
from dockyard.errors import ConflictError, ValidationError
from tests.conftest import FakeWorld

GIB = 1024**3
NOW = datetime(2026, 1, 1, tzinfo=UTC)
HALF = Need(0.5, 256 * 1024**2)


def room(
    engine_id: str,
    *,
    kind: EngineKind = EngineKind.LOCAL,
    status: EngineStatus = EngineStatus.HEALTHY,
    labels: dict[str, str] | None = None,
    cpus: float | None = 4.0,
    memory: int | None = 8 * GIB,
    reserved: Reserved | None = None,
    declared: bool = True,
) -> EngineRoom:
    return EngineRoom(
        engine_id,
        kind,
        status,
        labels or {},
        cpus,
        memory,
        reserved or Reserved(),
        declared_cpus=declared,
        declared_memory=declared,
    )


def refused(rooms: list[EngineRoom], request: PlacementRequest, need: Need) -> dict[str, str]:
    with pytest.raises(ConflictError) as caught:
        choose(rooms, request, need)
    assert caught.value.code == "NO_CAPACITY" and caught.value.kind == "conflict"
    return {e["engine"]: e["reason"] for e in caught.value.details["engines"]}


def test_every_reason_is_named_per_engine() -> None:
    rooms = [
        room("down", status=EngineStatus.UNREACHABLE),
        room("drained", status=EngineStatus.DRAINING),
        room("us", labels={"region": "us"}),
        room("remote", kind=EngineKind.REMOTE, labels={"region": "eu"}, cpus=0.25),
        room("swarm", kind=EngineKind.SWARM, labels={"region": "eu"}, cpus=0.25),
        room("busy", labels={"region": "eu"}, cpus=1.0, reserved=Reserved(0.75, 0)),
        room("small", labels={"region": "eu"}, memory=GIB, reserved=Reserved(0.0, GIB - 1)),
    ]
    reasons = refused(rooms, PlacementRequest(constraints={"region": "eu"}), HALF)
    assert reasons == {
        "down": "unreachable",
        "drained": "draining",
        "us": "labels",
        "remote": "cpu",
        "swarm": "cpu",  # a swarm runs containers (as stacks): only its room refuses
        "busy": "cpu",
        "small": "memory",
    }


def test_the_messages_say_why_in_numbers() -> None:
    rooms = [room("local", cpus=1.0, reserved=Reserved(1.0, 0))]
    with pytest.raises(ConflictError) as caught:
        choose(rooms, PlacementRequest(), HALF)
    (engine,) = caught.value.details["engines"]
    assert engine["message"] == "not enough cpu (free 0 of 1, needs 0.5)"
    assert "local: not enough cpu" in caught.value.message
    assert caught.value.details["requested"] == {"cpus": 0.5, "memory": HALF.memory}
    labels = refused([room("local")], PlacementRequest(constraints={"region": "us"}), HALF)
    assert labels == {"local": "labels"}


def test_the_most_free_engine_is_chosen_then_the_registry_order() -> None:
    rooms = [
        room("local", reserved=Reserved(3.0, 0)),  # 1 free
        room("a", reserved=Reserved(1.0, 0)),  # 3 free
        room("b", reserved=Reserved(1.0, 0)),  # 3 free: a wins the tie (it came first)
        room("c", reserved=Reserved(2.0, 0)),
    ]
    assert choose(rooms, PlacementRequest(), HALF) == "a"
    more_memory = [*rooms, room("d", memory=16 * GIB, reserved=Reserved(1.0, 0))]
    assert choose(more_memory, PlacementRequest(), HALF) == "d"  # same cpus, more memory


def test_a_spread_fills_the_freest_engine_first() -> None:
    reserved = {"x": 0.0, "y": 0.0, "z": 0.0}
    placed = []
    for _ in range(6):
        rooms = [room(e, cpus=2.0, reserved=Reserved(c, 0)) for e, c in reserved.items()]
        engine = choose(rooms, PlacementRequest(), Need(1.0, 0))
        reserved[engine] += 1.0
        placed.append(engine)
    assert placed == ["x", "y", "z", "x", "y", "z"]
    rooms = [room(e, cpus=2.0, reserved=Reserved(c, 0)) for e, c in reserved.items()]
    assert set(refused(rooms, PlacementRequest(), Need(1.0, 0)).values()) == {"cpu"}


def test_a_named_engine_is_the_only_candidate() -> None:
    rooms = [room("local"), room("eu", labels={"region": "eu"})]
    assert choose(rooms, PlacementRequest(engine="eu"), HALF) == "eu"
    both = PlacementRequest(engine="eu", constraints={"region": "eu"})
    assert choose(rooms, both, HALF) == "eu"
    clash = PlacementRequest(engine="local", constraints={"region": "eu"})
    assert refused(rooms, clash, HALF) == {"local": "labels"}  # only the named one
    with pytest.raises(ValidationError) as caught:
        choose(rooms, PlacementRequest(engine="nowhere"), HALF)
    assert caught.value.code == "UNKNOWN_ENGINE"


def test_constraints_match_a_subset_of_the_labels() -> None:
    rooms = [room("local", labels={"region": "eu", "disk": "ssd", "gpu": ""})]
    for constraints in ({}, {"region": "eu"}, {"region": "eu", "disk": "ssd"}, {"gpu": ""}):
        assert choose(rooms, PlacementRequest(constraints=constraints), HALF) == "local"
    for constraints in ({"region": "EU"}, {"disk": "hdd"}, {"zone": "a"}, {"gpu": "1"}):
        assert refused(rooms, PlacementRequest(constraints=constraints), HALF) == {
            "local": "labels"
        }


def test_only_a_declared_capacity_is_a_ceiling() -> None:
    # What an engine reports ranks it; it does not refuse (Docker's limits are caps).
    reported = room("local", cpus=2.0, reserved=Reserved(8.0, 64 * GIB), declared=False)
    assert choose([reported], PlacementRequest(), Need(1.0, GIB)) == "local"
    exact = room("local", cpus=1.0, memory=GIB, reserved=Reserved(0.5, GIB // 2))
    assert choose([exact], PlacementRequest(), Need(0.5, GIB // 2)) == "local"  # fills it


def view(engine_id: str, cpus: float | None, labels: dict[str, str]) -> EngineView:
    facts = EngineFacts("", "v", "1.41", "linux", 2, 4 * GIB, 0, 0, 0, 0)
    record = EngineRecord(
        engine_id, f"unix:///{engine_id}", EngineKind.LOCAL, labels, cpus, None, None,
        False, NOW, NOW,
    )  # fmt: skip
    return EngineView(record, EngineHealth(True, facts, NOW, None, NOW))


def test_placement_and_cluster_info_share_the_sums_replicas_included() -> None:
    views = [view("local", 4.0, {"region": "eu"}), view("e1", None, {})]
    uses = [
        ContainerUse("local", "running", 0.5, "256m", replicas=3),
        ContainerUse("local", "created", None, None),  # the defaults: 1 cpu, 512m
        ContainerUse("local", "failed", 2.0, "1g"),  # holds nothing
        ContainerUse("e1", "running", 1.0, "1g"),
    ]
    defaults = Resources(cpus=1.0, memory="512m")
    rooms = rooms_of(views, uses, defaults)
    info = cluster_info(views, uses, defaults)
    for placed, shown in zip(rooms, info.engines, strict=True):
        assert placed.reserved == Reserved(shown.reserved_cpus, shown.reserved_memory)
    assert rooms[0].reserved == Reserved(2.5, 1280 * 1024**2)
    assert rooms[0].declared_cpus and not rooms[1].declared_cpus
    assert rooms[1].cpus == 2.0  # as reported
    assert refused(rooms[:1], PlacementRequest(), Need(1.6, 0)) == {"local": "cpu"}


def test_the_sums_are_read_only_when_they_can_change_the_decision() -> None:
    """One engine that can run containers, no declared capacity: every create goes there
    whatever is reserved, so a create does not read every container record."""
    assert not sums_matter([view("local", None, {})])
    assert sums_matter([view("local", 2.0, {})])  # a ceiling
    assert sums_matter([view("local", None, {}), view("e1", None, {})])  # a spread


# -- through the application (a fake local engine) --------------------------------------


async def _create(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post(
        "/containers",
        json={"image": "busybox:test", "resources": {"cpus": 0.5}, **body},
    )


async def test_creates_meet_the_local_engines_declared_capacity(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    first = await _create(fake_client)
    assert first.status_code == 201 and first.json()["engine"] == "local"
    resp = await fake_client.patch("/engines/local", json={"cpus": 1})
    assert resp.status_code == 200
    assert (await _create(fake_client)).status_code == 201
    full = await _create(fake_client)
    assert full.status_code == 409
    error = full.json()
    assert error["code"] == "NO_CAPACITY"
    assert error["details"]["engines"][0]["engine"] == "local"
    assert error["details"]["engines"][0]["reason"] == "cpu"
    info = (await fake_client.get("/cluster/info")).json()
    assert info["total"]["reserved_cpus"] == 1.0


async def test_a_create_names_an_engine_or_constraints(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    assert (await _create(fake_client, engine="local")).json()["engine"] == "local"
    unknown = await _create(fake_client, engine="nowhere")
    assert unknown.status_code == 400 and unknown.json()["code"] == "UNKNOWN_ENGINE"
    await fake_client.patch("/engines/local", json={"labels": {"region": "eu"}})
    placed = await _create(fake_client, constraints={"region": "eu"})
    assert placed.status_code == 201 and placed.json()["engine"] == "local"
    wrong = await _create(fake_client, constraints={"region": "us"})
    assert wrong.status_code == 409
    assert wrong.json()["details"]["engines"][0]["reason"] == "labels"
    bad = await _create(fake_client, constraints={"bad key": "x"})
    assert bad.status_code == 400
    await fake_client.post("/engines/local/drain")
    drained = await _create(fake_client)
    assert drained.status_code == 409
    assert drained.json()["details"]["engines"][0]["reason"] == "draining"


async def test_concurrent_creates_never_overcommit(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    await fake_client.patch("/engines/local", json={"cpus": 2})
    answers = await asyncio.gather(*(_create(fake_client) for _ in range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 4 + [409] * 6


async def test_a_scale_counts_its_new_replicas_against_the_engine(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    await fake_client.patch("/engines/local", json={"cpus": 1.5})
    cuid = (await _create(fake_client)).json()["cuid"]
    grown = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": 3})
    assert grown.status_code == 200, grown.text
    too_many = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": 4})
    assert too_many.status_code == 409 and too_many.json()["code"] == "NO_CAPACITY"
    assert (await _create(fake_client)).status_code == 409
    shrunk = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": 1})
    assert shrunk.status_code == 200
    assert (await _create(fake_client)).status_code == 201
