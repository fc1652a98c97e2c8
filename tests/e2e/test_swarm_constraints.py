"""A create's constraints on a swarm engine, end to end (issue 12, docs/engines.md
"Swarm"): they are kept on the record and become the service's ``node.labels``
constraints. On the single-node swarm of extra dockerd 3, the node is labelled
``region=eu``: a create asking for it runs, one asking for ``zone=b`` (the engine has
the label, the node not) stays created with the swarm's "no suitable node" in ``error``,
and one whose value could be another expression is refused with nothing deployed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.docker_helpers import BUSYBOX, wait_for
from tests.e2e.test_swarm import running_tasks, swarm_docker
from tests.engines import SwarmEngine, swarm_client
from tests.server import ServeFactory

ENGINE = "swarm-c"
LABELS = {"region": "eu", "zone": "b", "bad": "a == b"}


@pytest.fixture
def labelled(swarm_engine: SwarmEngine) -> Iterator[str]:
    """The swarm's node, labelled ``region=eu`` for the test (the label removed after)."""
    node = swarm_docker(swarm_engine, "info", "--format", "{{.Swarm.NodeID}}").strip()
    assert node, "the swarm engine has no node id"
    swarm_docker(swarm_engine, "node", "update", "--label-add", "region=eu", node)
    try:
        yield node
    finally:
        swarm_docker(swarm_engine, "node", "update", "--label-rm", "region", node)


@pytest.fixture
def client(serve: ServeFactory, swarm_engine: SwarmEngine, labelled: str) -> Iterator[Any]:
    server = serve(engine_poll_interval=0.5, engine_poll_timeout=3)
    with swarm_client(server.url, swarm_engine, ENGINE, labels=LABELS) as made:
        yield made


def create(http: httpx.Client, cuids: list[str], constraints: dict[str, str]) -> Any:
    resp = http.post(
        "/containers",
        json={"image": BUSYBOX, "constraints": constraints, "start": True,
              "command": "sleep 600"},
    )  # fmt: skip
    if resp.status_code == 201:
        cuids.append(resp.json()["cuid"])
    return resp


def placement(swarm: SwarmEngine, cuid: str) -> str:
    fmt = "{{json .Spec.TaskTemplate.Placement.Constraints}}"
    return swarm_docker(swarm, "service", "inspect", "--format", fmt, f"{cuid}_app").strip()


def test_node_constraints_run_where_the_node_matches(
    client: Any, swarm_engine: SwarmEngine
) -> None:
    http, cuids = client
    ok = create(http, cuids, {"region": "eu"})
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["engine"] == ENGINE and body["constraints"] == {"region": "eu"}
    assert body["status"] == "running" and body["error"] is None, ok.text
    assert placement(swarm_engine, body["cuid"]) == '["node.labels.region == eu"]'
    assert running_tasks(swarm_engine, body["cuid"]) == 1
    got = http.get(f"/containers/{body['cuid']}").json()
    assert got["constraints"] == {"region": "eu"}

    stuck = create(http, cuids, {"zone": "b"})
    assert stuck.status_code == 201, stuck.text
    cuid = stuck.json()["cuid"]
    assert placement(swarm_engine, cuid) == '["node.labels.zone == b"]'

    def pending() -> bool:
        now = http.get(f"/containers/{cuid}").json()
        return now["status"] == "created" and "no suitable node" in (now["error"] or "")

    wait_for(pending, what="a pending task that says why")
    assert running_tasks(swarm_engine, cuid) == 0


def test_a_constraint_that_could_be_another_expression_is_refused(
    client: Any, swarm_engine: SwarmEngine
) -> None:
    http, cuids = client
    before = swarm_docker(swarm_engine, "service", "ls", "-q")
    resp = create(http, cuids, {"bad": "a == b"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "INVALID_CONSTRAINT", resp.text
    assert swarm_docker(swarm_engine, "service", "ls", "-q") == before
