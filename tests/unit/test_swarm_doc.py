"""The Compose document as a Swarm stack, and the policy on the stack (swarm_doc.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dockyard.adapters.engine.swarm import Task, status_of_tasks
from dockyard.domain.containers.compose_doc import Placement, app_volume_name, compose_document
from dockyard.domain.containers.swarm_doc import check_stack, restart_policy, stack_document
from dockyard.domain.models import ContainerSpec, Port, Resources, Status
from dockyard.errors import ValidationError

CUID = "c12345678-1234-1234-1234-123456789abc"
NET = "dockyard-swarm"


def compose(replicas: int = 1, **spec: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"image": "dockyard-test/busybox:latest", "command": "sleep 1"}
    values.update(spec)
    return compose_document(
        CUID,
        "alice",
        ContainerSpec(**values),
        Path("/unused"),
        Placement("dockyard", "1000:1000", 10),
        boot_py=False,
        replicas=replicas,
        volume=True,
    )


def stack(**kwargs: Any) -> dict[str, Any]:
    replicas = kwargs.pop("replicas", 1)
    constraints = kwargs.pop("constraints", None)
    doc = compose(replicas, **kwargs)
    return stack_document(doc, network=NET, replicas=replicas, constraints=constraints)


def test_one_service_with_replicas_limits_restart_and_labels() -> None:
    doc = stack(
        replicas=3,
        resources=Resources(cpus=0.5, memory="256m", pids=64),
        restart="on-failure:4",
        ports=[Port(container=80, host=18080)],
    )
    check_stack(doc, CUID, NET)
    (name,) = doc["services"]
    service = doc["services"][name]
    deploy = service["deploy"]
    assert name == "app" and deploy["replicas"] == 3
    assert deploy["resources"] == {"limits": {"cpus": "0.5", "memory": "256m", "pids": 64}}
    assert deploy["restart_policy"] == {"condition": "on-failure", "max_attempts": 4}
    for labels in (deploy["labels"], service["labels"]):
        assert labels["dockyard.managed"] == "true" and labels["dockyard.cuid"] == CUID
        assert labels["dockyard.owner"] == "alice"
    # One published port for every replica, through the routing mesh.
    assert service["ports"] == [
        {"target": 80, "protocol": "tcp", "published": 18080, "mode": "ingress"}
    ]
    assert "container_name" not in service and service["cap_drop"] == ["ALL"]
    assert service["user"] == "1000:1000"
    assert doc["volumes"] == {"app": {"external": True, "name": app_volume_name(CUID)}}
    assert service["volumes"] == [{"type": "volume", "source": "app", "target": "/app"}]
    assert doc["networks"] == {NET: {"external": True, "name": NET}}
    assert service["networks"] == [NET]


def test_constraints_become_node_label_constraints() -> None:
    doc = stack(constraints={"region": "eu", "disk": "ssd"})
    check_stack(doc, CUID, NET, {"region": "eu", "disk": "ssd"})
    assert doc["services"]["app"]["deploy"]["placement"] == {
        "constraints": ["node.labels.disk == ssd", "node.labels.region == eu"]
    }


@pytest.mark.parametrize(
    ("restart", "policy"),
    [
        ("no", {"condition": "none"}),
        ("always", {"condition": "any"}),
        ("unless-stopped", {"condition": "any"}),
        ("on-failure", {"condition": "on-failure"}),
    ],
)
def test_restart_policies(restart: str, policy: dict[str, Any]) -> None:
    assert restart_policy(restart) == policy


def test_no_network_is_refused_on_a_swarm() -> None:
    with pytest.raises(ValidationError) as caught:
        stack(network="none")
    assert caught.value.code == "SWARM_UNSUPPORTED"


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    here = doc
    for key in parents:
        here = here.setdefault(key, {})
    here[last] = value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("services.app.privileged", True),
        ("services.app.cap_add", ["SYS_ADMIN"]),
        ("services.app.devices", ["/dev/sda:/dev/sda"]),
        ("services.app.pid", "host"),
        ("services.app.ipc", "host"),
        ("services.app.network_mode", "host"),
        ("services.app.userns_mode", "host"),
        ("services.app.security_opt", ["seccomp=unconfined"]),
        ("services.app.sysctls", {"net.ipv4.ip_forward": "1"}),
        ("services.app.volumes", [{"type": "bind", "source": "/", "target": "/app"}]),
        ("services.app.volumes", ["/etc:/app"]),
        ("services.app.networks", ["host"]),
        ("services.app.cap_drop", []),
        ("services.app.user", "0:0"),
        ("services.app.user", "root"),
        ("services.app.ports", [{"target": 80, "published": 80, "mode": "host"}]),
        ("services.app.deploy.mode", "global"),
        ("services.app.deploy.endpoint_mode", "dnsrr"),
        ("services.app.deploy.resources.reservations", {"generic_resources": []}),
        ("services.app.deploy.placement.preferences", [{"spread": "node.id"}]),
        ("services.app.deploy.placement.constraints", ["node.role == manager"]),
        ("services.other", {"image": "x"}),
        ("volumes.app", {"driver_opts": {"type": "none", "device": "/", "o": "bind"}}),
        ("volumes.host", {"external": True, "name": "x"}),
        ("networks.host", {"external": True, "name": "host"}),
        ("configs", {"c": {"file": "/etc/shadow"}}),
        ("secrets", {"s": {"file": "/etc/shadow"}}),
    ],
)
def test_every_host_access_is_refused_on_the_stack(path: str, value: Any) -> None:
    doc = copy.deepcopy(stack())
    _set(doc, path, value)
    with pytest.raises(ValidationError) as caught:
        check_stack(doc, CUID, NET)
    assert caught.value.code == "HOST_ACCESS_DENIED"


def test_another_containers_volume_is_refused() -> None:
    doc = stack()
    with pytest.raises(ValidationError):
        check_stack(doc, "c00000000-0000-0000-0000-000000000000", NET)


def task(slot: int, desired: str, state: str, code: int | None = None) -> Task:
    return Task(f"t{slot}{state}", slot, desired, state, "cid", code, None)


def test_status_from_tasks() -> None:
    assert status_of_tasks(0, []).status is Status.CREATED
    assert status_of_tasks(1, [task(1, "running", "running")]).status is Status.RUNNING
    assert status_of_tasks(1, [task(1, "running", "preparing")]).status is Status.RESTARTING
    stopped = status_of_tasks(0, [task(1, "shutdown", "shutdown", 143)])
    assert stopped.status is Status.EXITED and stopped.exit_code == 143
    done = status_of_tasks(1, [task(1, "shutdown", "complete", 0)])
    assert done.status is Status.EXITED and done.exit_code == 0


def test_a_task_no_node_can_take_is_created_and_says_why() -> None:
    stuck = Task(
        "t1",
        1,
        "running",
        "pending",
        None,
        None,
        None,
        "no suitable node (scheduling constraints not satisfied on 1 node)",
    )
    state = status_of_tasks(1, [stuck])
    assert state.status is Status.CREATED
    assert state.detail == f"task pending: {stuck.error}"
    assert status_of_tasks(1, [task(1, "running", "running")]).detail == ""  # cleared
