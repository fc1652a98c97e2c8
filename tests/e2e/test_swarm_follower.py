"""The follower of a swarm engine, end to end (issue 12, docs/engines.md "Swarm"): a
task that ends by itself reaches the stored status (a list reads the store) and the
events history, with no read of that container asking the engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.docker_helpers import BUSYBOX, wait_for
from tests.engines import SwarmEngine, swarm_client
from tests.server import ServeFactory

ENGINE = "swarm-f"


@pytest.fixture
def client(serve: ServeFactory, swarm_engine: SwarmEngine) -> Iterator[Any]:
    server = serve(engine_poll_interval=0.5, engine_poll_timeout=3)
    with swarm_client(server.url, swarm_engine, ENGINE) as made:
        yield made


def listed(http: httpx.Client, cuid: str) -> dict[str, Any]:
    page = http.get("/containers", params={"limit": 100}).json()["containers"]
    (mine,) = [c for c in page if c["cuid"] == cuid]
    return dict(mine)


def test_a_task_that_fails_reaches_the_status_and_the_events(client: Any) -> None:
    http, cuids = client
    resp = http.post(
        "/containers",
        json={"image": BUSYBOX, "engine": ENGINE, "start": True, "restart": "no",
              "command": "sh -c 'sleep 3; exit 7'"},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    cuids.append(cuid)
    assert resp.json()["status"] == "running", resp.text
    wait_for(
        lambda: listed(http, cuid)["status"] == "exited", what="the follower's exited", timeout=60
    )
    assert listed(http, cuid)["exit_code"] == 7

    def died() -> bool:
        events = http.get("/events", params={"cuid": cuid, "type": "die"}).json()["events"]
        return any(e["details"].get("exit_code") == 7 for e in events)

    wait_for(died, what="the task's die event with its exit code")
    started = http.get("/events", params={"cuid": cuid, "type": "start"}).json()["events"]
    assert started, "the task's start was heard"


def test_an_auto_remove_container_on_a_swarm_is_removed_after_its_task_ends(client: Any) -> None:
    """The follower's ``die`` drives ``auto_remove`` there as on a local engine: the stack
    is removed and the container answers 404, with ``container.auto_removed`` in the
    audit trail (actor ``system``)."""
    http, cuids = client
    resp = http.post(
        "/containers",
        json={"image": BUSYBOX, "engine": ENGINE, "start": True, "auto_remove": True,
              "command": "sh -c 'sleep 2; exit 0'"},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    cuids.append(cuid)
    wait_for(
        lambda: http.get(f"/containers/{cuid}").status_code == 404,
        what="the auto-removal on the swarm",
        timeout=90,
    )
    audit = http.get("/audit", params={"resource": cuid}).json()["entries"]
    removed = [e for e in audit if e["action"] == "container.auto_removed"]
    assert len(removed) == 1 and removed[0]["user"] == "system", audit
