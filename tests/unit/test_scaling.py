"""Scale (issue 11) without Docker: the count rules, the Compose document of N replicas,
the engine's listing of them, the store, quotas and the reconcile, over the fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.adapters.engine.parsing import managed_of, replicas_of
from dockyard.domain.containers.compose_doc import Placement, compose_document, container_name
from dockyard.domain.containers.policy import check_document
from dockyard.domain.containers.scaling import replica_count, require_replica
from dockyard.domain.models import ContainerRecord, ContainerSpec, Port, Status, new_cuid
from dockyard.domain.ports import ManagedContainer
from dockyard.errors import NotFoundError, ValidationError
from tests.conftest import FakeWorld

PLACEMENT = Placement(network="dockyard-test", user="1000:1000", stop_timeout=5)


def test_the_count_comes_from_the_body_or_the_query_and_must_agree() -> None:
    assert replica_count(3, None, 10) == 3
    assert replica_count(None, 2, 10) == 2
    assert replica_count(4, 4, 10) == 4
    cases = [((2, 3), "CONFLICTING_FIELDS"), ((None, None), "MISSING_FIELD")]
    cases += [((0, None), "INVALID_REPLICAS"), ((None, 11), "INVALID_REPLICAS")]
    for (replicas, count), code in cases:
        with pytest.raises(ValidationError) as caught:
            replica_count(replicas, count, 10)
        assert caught.value.code == code


def test_a_replica_that_does_not_exist_is_not_found() -> None:
    record = ContainerRecord(cuid=new_cuid(), owner="a", spec=ContainerSpec(image="x"), replicas=2)
    require_replica(record, 1)
    require_replica(record, 2)
    for index in (0, 3):
        with pytest.raises(NotFoundError) as caught:
            require_replica(record, index)
        assert caught.value.code == "REPLICA_NOT_FOUND"


def test_replicas_are_named_copies_with_their_own_ports(tmp_path: Path) -> None:
    cuid = new_cuid()
    spec = ContainerSpec(image="img", ports=[Port(host=20001, container=80)])
    one = compose_document(cuid, "alice", spec, tmp_path, PLACEMENT, boot_py=False)
    three = compose_document(
        cuid,
        "alice",
        spec,
        tmp_path,
        PLACEMENT,
        boot_py=False,
        replicas=3,
        replica_ports={2: [Port(host=20002, container=80)], 3: [Port(host=20003, container=80)]},
    )
    check_document(three, tmp_path, PLACEMENT.network)  # the policy accepts it
    services = three["services"]
    assert list(services) == ["app", "app-2", "app-3"]
    # Replica 1 is unchanged by a scale: Compose never recreates it for one.
    assert services["app"] == one["services"]["app"]
    assert services["app-3"]["container_name"] == container_name(cuid, 3) == f"{cuid}-app-3"
    assert services["app-3"]["labels"]["dockyard.replica"] == "3"
    assert services["app-3"]["labels"]["dockyard.cuid"] == cuid
    assert services["app-2"]["ports"] == [{"target": 80, "protocol": "tcp", "published": "20002"}]
    assert services["app-2"]["volumes"] == services["app"]["volumes"]  # one shared /app


def test_the_engine_listing_gives_each_replica_once() -> None:
    cuid = new_cuid()
    binding = {"PrivatePort": 80, "PublicPort": 20002, "Type": "tcp"}
    rows: list[dict[str, Any]] = [
        {"Names": [f"/{cuid}-app-2"], "State": "running", "Ports": [binding, binding]},
        {"Names": [f"/{cuid}-app-1"], "State": "exited", "Ports": []},
        {"Names": ["/someone-else"], "State": "running", "Ports": []},
    ]
    listed = replicas_of(rows, cuid)
    assert [(r.index, r.status) for r in listed] == [(1, Status.EXITED), (2, Status.RUNNING)]
    assert listed[1].ports == [Port(host=20002, container=80)]
    labels = {"dockyard.cuid": cuid, "dockyard.replica": "2"}
    assert managed_of([{"Labels": labels, "State": "running"}])[0].replica == 2


async def _create(client: httpx.AsyncClient, **body: Any) -> str:
    resp = await client.post("/containers", json={"image": "busybox:test", "start": True, **body})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


async def test_scale_up_and_down_draws_and_gives_back_ports(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _create(fake_client, ports=[{"host": None, "container": 80}])
    resp = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": 3})
    assert resp.status_code == 200, resp.text
    replicas = resp.json()["replicas"]
    assert [r["index"] for r in replicas] == [1, 2, 3]
    hosts = [r["ports"][0]["host"] for r in replicas]
    assert len(set(hosts)) == 3 and hosts[0] == resp.json()["ports"][0]["host"]
    document = fake_world.compose.documents[cuid]
    assert list(document["services"]) == ["app", "app-2", "app-3"]
    allocations = await fake_world.app.state.services.containers.ports._store.held(cuid)
    assert sorted((a.replica, a.host_port) for a in allocations)[1:] == [
        (2, hosts[1]),
        (3, hosts[2]),
    ]
    repo = fake_world.app.state.services.containers._repo
    repo._cache.clear()  # the count is stored, not only cached
    assert (await repo.get(cuid)).replica_ports[3][0].host == hosts[2]

    resp = await fake_client.post(f"/containers/{cuid}/scale?count=1")
    assert resp.status_code == 200 and len(resp.json()["replicas"]) == 1
    assert list(fake_world.compose.documents[cuid]["services"]) == ["app"]
    held = await fake_world.app.state.services.containers.ports._store.held(cuid)
    assert [a.host_port for a in held] == [hosts[0]]
    events = (await fake_client.get("/events", params={"type": "container.scaled"})).json()
    assert [e["details"] for e in events["events"]] == [
        {"replicas": 1, "before": 3},
        {"replicas": 3, "before": 1},
    ]


async def test_a_page_of_containers_reads_the_replicas_in_one_engine_call(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    plain = await _create(fake_client)
    resp = await fake_client.get("/containers")
    assert resp.status_code == 200 and fake_world.engine.replica_list_calls == 0
    scaled = [await _create(fake_client) for _ in range(3)]
    for cuid, count in zip(scaled, (2, 3, 2), strict=True):
        resp = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": count})
        assert resp.status_code == 200, resp.text
    fake_world.engine.replica_list_calls = 0
    listed = {c["cuid"]: c for c in (await fake_client.get("/containers")).json()["containers"]}
    assert fake_world.engine.replica_list_calls == 1
    assert [r["index"] for r in listed[plain]["replicas"]] == [1]
    for cuid, count in zip(scaled, (2, 3, 2), strict=True):
        assert [r["index"] for r in listed[cuid]["replicas"]] == list(range(1, count + 1))
        assert {r["status"] for r in listed[cuid]["replicas"]} == {"running"}
        assert (
            listed[cuid]["replicas"]
            == (await fake_client.get(f"/containers/{cuid}")).json()["replicas"]
        )


async def test_a_failed_scale_changes_nothing(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _create(fake_client, ports=[{"host": None, "container": 80}])
    fake_world.compose.fail_next = "Error response from daemon: boom"
    resp = await fake_client.post(f"/containers/{cuid}/scale", json={"replicas": 2})
    assert resp.status_code == 500 and resp.json()["code"] == "COMPOSE_FAILED"
    got = (await fake_client.get(f"/containers/{cuid}")).json()
    assert len(got["replicas"]) == 1
    held = await fake_world.app.state.services.containers.ports._store.held(cuid)
    assert len(held) == 1  # the new replica's port was given back
    assert list(fake_world.compose.documents[cuid]["services"]) == ["app"]  # and the project


async def test_quotas_count_replicas(fake_world: FakeWorld, fake_client: httpx.AsyncClient) -> None:
    account = {"username": "rita", "password": "rita-password", "role": "user"}
    quota = {"max_containers": 3, "max_cpus": 2.0}
    resp = await fake_client.post("/accounts", json={**account, "quota": quota})
    assert resp.status_code == 201, resp.text
    rita = httpx.AsyncClient(
        transport=fake_client._transport, base_url="http://test", auth=("rita", "rita-password")
    )
    cuid = await _create(rita, resources={"cpus": 0.5})
    resp = await rita.post(f"/containers/{cuid}/scale", json={"replicas": 5})
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_containers"
    assert len((await rita.get(f"/containers/{cuid}")).json()["replicas"]) == 1
    assert (await rita.post(f"/containers/{cuid}/scale", json={"replicas": 3})).status_code == 200
    # 3 replicas of 1 CPU would be 3 CPUs: over max_cpus.
    resp = await rita.patch(f"/containers/{cuid}", json={"resources": {"cpus": 1.0}})
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_cpus"
    resp = await rita.post("/containers", json={"image": "busybox:test"})
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_containers"
    # A scale down is always allowed.
    assert (await rita.post(f"/containers/{cuid}/scale", json={"replicas": 1})).status_code == 200
    await rita.aclose()


async def test_ports_of_a_scaled_container_wait_for_a_scale_to_one(
    fake_client: httpx.AsyncClient,
) -> None:
    cuid = await _create(fake_client)
    assert (await fake_client.post(f"/containers/{cuid}/scale?count=2")).status_code == 200
    resp = await fake_client.patch(f"/containers/{cuid}/ports", json={"ports": []})
    assert resp.status_code == 409 and resp.json()["code"] == "CONTAINER_SCALED"


async def test_reconcile_takes_replicas_for_their_container(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _create(fake_client)
    assert (await fake_client.post(f"/containers/{cuid}/scale?count=2")).status_code == 200
    engine = fake_world.engine
    first = engine.containers[cuid]
    second = ManagedContainer(
        cuid=cuid,
        labels=dict(first.labels),
        status=Status.EXITED,
        project_dir=first.project_dir,
        replica=2,
    )
    listed = engine.list_managed

    async def with_replica() -> list[ManagedContainer]:
        return [second, *(await listed())]

    engine.list_managed = with_replica  # type: ignore[method-assign]
    report = await fake_world.app.state.services.reconciler.run_once(startup=True)
    assert cuid not in report.adopted + report.orphans + report.missing + report.updated
    got = (await fake_client.get(f"/containers/{cuid}")).json()
    assert got["status"] == "running"
