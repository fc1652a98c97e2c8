"""A swarm service's tasks (issue 12, docs/engines.md "Swarm"): as the engine lists
them, the container's status they make, and the follower's view of them.

The follower of a swarm engine (``SwarmEngine.stream_events``) polls the tasks of
Dockyard's services (one list of services, one of tasks, each with the engine's
deadline) and turns each task that changed since the last look into the engine event a
container's would be: a task running is ``start``, one that failed, completed, was
rejected or shut down is ``die`` (with its exit code), one the swarm cannot place is
``task:pending`` (not recorded as an event; the follower reads the new status and its
"no suitable node" into the record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.adapters.engine.parsing import parse_time
from dockyard.domain.models import LiveState, Port, Status
from dockyard.domain.ports import EngineEvent
from dockyard.errors import StateError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PENDING = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)


@dataclass(frozen=True)
class Task:
    """One task of a container's service, as the engine lists it."""

    id: str
    slot: int
    desired: str
    state: str
    container_id: str | None
    exit_code: int | None
    at: datetime | None
    error: str = ""  # the swarm's word on it: "no suitable node (...)", "task: non-zero exit"
    service: str = ""  # its service's id
    node: str = ""  # the id of the node it is on ("" while not assigned)


def task_of(row: dict[str, Any]) -> Task:
    status = row.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    return Task(
        id=str(row.get("ID", "")),
        slot=int(row.get("Slot") or 0),
        desired=str(row.get("DesiredState", "")),
        state=str(status.get("State", "")),
        container_id=container.get("ContainerID") or None,
        exit_code=container.get("ExitCode"),
        at=parse_time(status.get("Timestamp")),
        error=str(status.get("Err") or ""),
        service=str(row.get("ServiceID", "")),
        node=str(row.get("NodeID") or ""),
    )


def unschedulable(task: Task) -> bool:
    """A task the swarm cannot place (no node matches its constraints, or none has
    room): it stays pending until a node changes, not a thing to wait for."""
    return task.state == "pending" and task.desired == "running" and bool(task.error)


def status_of_tasks(wanted: int, tasks: list[Task]) -> LiveState:
    """A container's status from its service's tasks (``wanted``: the replicas asked)."""
    newest = sorted(tasks, key=lambda t: t.at or EPOCH)
    running = [t for t in newest if t.state == "running"]
    if running:
        first = min(running, key=lambda t: t.slot)
        return LiveState(
            status=Status.RUNNING, started_at=first.at, container_id=first.container_id, detail=""
        )
    last = newest[-1] if newest else None
    if last is None:
        return LiveState(status=Status.RESTARTING if wanted else Status.CREATED, detail="")
    stuck = [t for t in newest if unschedulable(t)]
    if wanted and stuck:  # not started: the swarm has no node for it (status created)
        return LiveState(status=Status.CREATED, detail=f"task pending: {stuck[-1].error}")
    if wanted and any(t.state in PENDING and t.desired == "running" for t in newest):
        # Swarm is (re)starting one (its restart policy): transitional.
        return LiveState(status=Status.RESTARTING, container_id=last.container_id, detail="")
    return LiveState(
        status=Status.EXITED,
        exit_code=last.exit_code if last.exit_code is not None else 0,
        finished_at=last.at,
        container_id=last.container_id,
        detail="",
    )


_ENDED = frozenset({"complete", "failed", "rejected", "shutdown"})


@dataclass(frozen=True)
class Service:
    """One of Dockyard's services on a swarm: whose container, and its owner."""

    id: str
    cuid: str
    owner: str


def service_row(row: Mapping[str, Any]) -> Service | None:
    labels = ((row.get("Spec") or {}).get("Labels")) or {}
    cuid = labels.get("dockyard.cuid")
    if not cuid:
        return None
    return Service(str(row.get("ID", "")), str(cuid), str(labels.get("dockyard.owner", "")))


def task_action(before: Task | None, now: Task) -> str | None:
    """The event a task's change is (None: nothing a container would say)."""
    if before is not None and (before.state, before.error) == (now.state, now.error):
        return None
    if now.state == "running":
        return "start"
    if now.state in _ENDED:
        if before is None and now.desired != "running":
            return None  # ended before the follower first looked: old news
        return "die"
    if unschedulable(now):
        return "task:pending"
    return None


def task_events(
    before: Mapping[str, Task], now: Sequence[Task], services: Mapping[str, Service]
) -> list[EngineEvent]:
    """The events of the tasks of Dockyard's ``services`` (by id) that changed since
    ``before`` (the last look, by task id), oldest first."""
    events = []
    for task in sorted(now, key=lambda t: t.at or EPOCH):
        service = services.get(task.service)
        action = task_action(before.get(task.id), task)
        if service is None or action is None:
            continue
        attributes = {
            "dockyard.cuid": service.cuid,
            "dockyard.owner": service.owner,
            "swarm.task": task.id,
            "swarm.state": task.state,
        }
        if action == "die":
            attributes["exitCode"] = str(task.exit_code if task.exit_code is not None else 0)
        if task.error:
            attributes["swarm.error"] = task.error
        events.append(EngineEvent(service.cuid, action, attributes, task.at))
    return events


def reach_task(node: str, own_node: str, engines_by_node: Mapping[str, str]) -> str | None:
    """Through which engine a task's container on ``node`` is reached: None for this
    one (the manager's own node, or a task not placed yet), else the registered engine
    whose swarm node that is (``engines_by_node``: node id -> engine id); none -> 409
    ``SWARM_NODE_UNREACHABLE`` (files and the terminal cannot reach it)."""
    if not node or not own_node or node == own_node:
        return None
    engine = engines_by_node.get(node)
    if engine is not None:
        return engine
    raise StateError(
        f"the container's task runs on swarm node {node}, which Dockyard cannot reach (no"
        " engine of the registry is that node); its files and terminal are out of reach",
        code="SWARM_NODE_UNREACHABLE",
        details={"node": node, "manager_node": own_node},
    )


def state_of_service(service: dict[str, Any], tasks: list[Task]) -> LiveState:
    state = status_of_tasks(wanted_of(service), tasks)
    if state.status is Status.CREATED and ran_before(service):
        # Stopped, and its tasks already reaped by the swarm.
        return LiveState(status=Status.EXITED, exit_code=0, detail="")
    return state


def wanted_of(service: dict[str, Any]) -> int:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    return int((mode.get("Replicated") or {}).get("Replicas") or 0)


def ran_before(service: dict[str, Any]) -> bool:
    """Whether the spec before the last deploy wanted tasks (a stop, not a create)."""
    mode = (service.get("PreviousSpec") or {}).get("Mode") or {}
    return bool((mode.get("Replicated") or {}).get("Replicas"))


def published_of(service: dict[str, Any]) -> list[Port]:
    ports = ((service.get("Endpoint") or {}).get("Ports")) or []
    return [
        Port(host=int(p["PublishedPort"]), container=int(p["TargetPort"]), protocol=p["Protocol"])
        for p in ports
        if p.get("PublishedPort") and p.get("Protocol") in ("tcp", "udp")
    ]
