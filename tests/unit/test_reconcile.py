"""Reconcile rules with an in-memory engine: missing, adopted, orphaned, interrupted."""

from __future__ import annotations

from typing import Any

from dockyard.domain.models import ContainerRecord, ContainerSpec, Status, new_cuid
from dockyard.domain.ports import ManagedContainer
from tests.conftest import FakeWorld


async def test_reconcile(fake_world: FakeWorld, fake_client: Any) -> None:
    services = fake_world.app.state.services
    repo = services.containers._repo
    made = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    fake_world.engine.containers.pop(made["cuid"])  # vanished behind our back

    interrupted = ContainerRecord(
        cuid=new_cuid(), owner="admin", spec=ContainerSpec(image="busybox:test")
    )
    await repo.insert(interrupted)  # a create killed before Compose ran
    (fake_world.settings.containers_dir / interrupted.cuid / "app").mkdir(parents=True)

    stray, orphan, foreign = new_cuid(), new_cuid(), new_cuid()
    home = fake_world.settings.containers_dir
    for cuid, owner, where in (
        (stray, "admin", home),
        (orphan, "ghost", home),
        (foreign, "admin", "/elsewhere/containers"),
    ):
        fake_world.engine.containers[cuid] = ManagedContainer(
            cuid=cuid,
            labels={"dockyard.owner": owner},
            status=Status.RUNNING,
            image="img",
            project_dir=f"{where}/{cuid}",
        )

    report = await services.reconciler.run_once(startup=True)
    assert report.missing == [made["cuid"]]
    assert report.completed == [interrupted.cuid]
    assert report.adopted == [stray] and report.orphans == [orphan]
    # Another Dockyard's container on the same engine is left alone entirely.
    assert await repo.get(foreign) is None
    assert (await repo.get(made["cuid"])).status is Status.MISSING
    assert (await repo.get(interrupted.cuid)).status is Status.CREATED
    assert (await repo.get(stray)).owner == "admin"
    assert await repo.get(foreign) is None and foreign not in report.orphans

    # An interrupted create that cannot be completed is marked failed, never left a ghost.
    broken = ContainerRecord(cuid=new_cuid(), owner="admin", spec=ContainerSpec(image="x:y"))
    await repo.insert(broken)
    fake_world.compose.fail_next = "no such image"
    report = await services.reconciler.run_once(startup=True)
    failed = await repo.get(broken.cuid)
    assert report.failed == [broken.cuid] and failed.status is Status.FAILED and failed.error
    # Later passes leave in-flight creates alone.
    inflight = ContainerRecord(cuid=new_cuid(), owner="admin", spec=ContainerSpec(image="x"))
    await repo.insert(inflight)
    await services.reconciler.run_once(startup=False)
    assert (await repo.get(inflight.cuid)).status is Status.CREATING


async def test_what_the_reconcile_does_is_recorded(fake_world: FakeWorld, fake_client: Any) -> None:
    """Changes no request asked for reach the events and the audit trail, by `system`."""
    made = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    fake_world.engine.containers.pop(made["cuid"])
    stray = new_cuid()
    fake_world.engine.containers[stray] = ManagedContainer(
        cuid=stray,
        labels={"dockyard.owner": "admin"},
        status=Status.RUNNING,
        image="img",
        project_dir=f"{fake_world.settings.containers_dir}/{stray}",
    )
    await fake_world.app.state.services.reconciler.run_once(startup=False)

    events = (await fake_client.get("/events", params={"limit": 10})).json()["events"]
    seen = {(e["type"], e["cuid"], e["actor"], e["source"]) for e in events}
    assert ("container.missing", made["cuid"], "system", "dockyard") in seen
    assert ("container.adopted", stray, "system", "dockyard") in seen
    assert ("container.created", made["cuid"], "admin", "api") in seen

    entries = (await fake_client.get("/audit", params={"user": "system"})).json()["entries"]
    assert {(e["action"], e["resource"], e["method"], e["status"]) for e in entries} == {
        ("container.missing", made["cuid"], "SYSTEM", 0),
        ("container.adopted", stray, "SYSTEM", 0),
    }
    # The create itself was audited once, by its request, naming the new container.
    mine = (await fake_client.get("/audit", params={"resource": made["cuid"]})).json()
    assert [(e["action"], e["user"]) for e in mine["entries"] if e["method"] == "POST"] == [
        ("create_container", "admin")
    ]


async def test_the_engines_removing_never_sticks(fake_world: FakeWorld, fake_client: Any) -> None:
    """Issue 9 #8: a `docker rm -f` behind Dockyard's back is seen half-way (`removing`)
    and then gone; the record ends `missing`, not stuck in `removing`."""
    made = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    cuid = made["cuid"]
    services = fake_world.app.state.services
    repo = services.containers._repo
    fake_world.engine.containers[cuid].status = Status.REMOVING  # the engine, mid-removal
    record = await repo.get(cuid)
    await services.containers.refresh(record)
    assert (await repo.get(cuid)).status is not Status.REMOVING
    fake_world.engine.containers.pop(cuid)  # ... and its `destroy`
    await services.containers.refresh(await repo.get(cuid))
    assert (await repo.get(cuid)).status is Status.MISSING
    # A `removing` only Dockyard's delete writes, interrupted (no delete in progress here):
    # the next reconcile finishes it, also after start-up.
    other = (await fake_client.post("/containers", json={"image": "busybox:test"})).json()
    stuck = await repo.get(other["cuid"])
    stuck.status = Status.REMOVING
    await repo.save_state(stuck)
    await services.reconciler.run_once(startup=False)
    assert await repo.get(other["cuid"]) is None
    assert (await fake_client.get(f"/containers/{cuid}")).json()["status"] == "missing"
