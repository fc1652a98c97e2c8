"""The engine's JSON, turned into our typed values (tested over recorded answers).

Nothing outside ``adapters/engine`` reads a Docker dict: callers get ``LiveState``,
``ManagedContainer``, ``Change``, ``PathStat``, ``ContainerProcess``, ``EngineEvent``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from dockyard.domain.containers.compose_doc import REPLICA_LABEL, replica_of
from dockyard.domain.models import LiveState, Port, Status
from dockyard.domain.ports import (
    Change,
    ChangeKind,
    ContainerProcess,
    EngineEvent,
    ManagedContainer,
    PathStat,
    ReplicaState,
)

# ``GET /containers/{id}/changes``: Kind 0 modified, 1 added, 2 deleted.
_CHANGE_KINDS = {0: ChangeKind.CHANGED, 1: ChangeKind.ADDED, 2: ChangeKind.DELETED}
# Go's os.FileMode type bits, as the archive stat header carries them.
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27


def status_of(raw: str) -> Status:
    try:
        return Status(raw)
    except ValueError:
        return Status.DEAD


def parse_time(raw: str | None) -> datetime | None:
    """The engine's RFC 3339 times (nanoseconds; Go's zero time is "never")."""
    if not raw or raw.startswith("0001-01-01"):
        return None
    # Python's parser takes at most microseconds.
    head, _, frac = raw.rstrip("Z").partition(".")
    offset = "+00:00"
    for sign in ("+", "-"):
        if sign in frac:
            frac, _, zone = frac.partition(sign)
            offset = sign + zone
    text = head + ("." + frac[:6] if frac else "") + offset
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def live_state(data: dict[str, Any]) -> LiveState:
    """``GET /containers/{id}/json``."""
    state = data.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return LiveState(
        status=status_of(state.get("Status", "")),
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        restart_count=int(data.get("RestartCount") or 0),
        health=health,
        container_id=data.get("Id"),
        image_id=data.get("Image"),
    )


def process_of(data: dict[str, Any]) -> ContainerProcess:
    """``GET /containers/{id}/json``: what metrics need to find the process."""
    state = data.get("State") or {}
    return ContainerProcess(
        container_id=str(data.get("Id", "")),
        pid=int(state.get("Pid") or 0),
        status=status_of(state.get("Status", "")),
        tty=bool((data.get("Config") or {}).get("Tty")),
    )


def managed_of(rows: list[dict[str, Any]]) -> list[ManagedContainer]:
    """``GET /containers/json``: the rows that carry a cuid."""
    found: list[ManagedContainer] = []
    for row in rows:
        labels = row.get("Labels") or {}
        cuid = labels.get("dockyard.cuid")
        if not cuid:
            continue
        found.append(
            ManagedContainer(
                cuid=cuid,
                labels=labels,
                status=status_of(row.get("State", "")),
                image=row.get("Image", ""),
                project_dir=labels.get("com.docker.compose.project.working_dir"),
                replica=_replica_label(labels),
            )
        )
    return found


def _replica_label(labels: dict[str, str]) -> int:
    raw = labels.get(REPLICA_LABEL, "1")
    return int(raw) if raw.isdigit() else 1


def replicas_of(rows: list[dict[str, Any]], cuid: str) -> list[ReplicaState]:
    """``GET /containers/json`` of one cuid: each replica's index, state and bindings
    (the engine lists a binding once per address family; one of them is kept)."""
    found: list[ReplicaState] = []
    for row in rows:
        names = row.get("Names") or []
        index = next((i for i in (replica_of(n, cuid) for n in names) if i), None)
        if index is None:
            continue
        ports: dict[tuple[int, str], Port] = {}
        for item in row.get("Ports") or []:
            host, proto = item.get("PublicPort"), item.get("Type", "tcp")
            if not host or proto not in ("tcp", "udp"):
                continue
            ports.setdefault(
                (int(item["PrivatePort"]), proto),
                Port(host=int(host), container=int(item["PrivatePort"]), protocol=proto),
            )
        found.append(
            ReplicaState(
                index,
                status_of(row.get("State", "")),
                [ports[key] for key in sorted(ports)],
            )
        )
    return sorted(found, key=lambda r: r.index)


def changes_of(rows: list[dict[str, Any]] | None) -> list[Change]:
    """``GET /containers/{id}/changes`` (``null`` when nothing changed)."""
    return [
        Change(str(row["Path"]), _CHANGE_KINDS.get(row.get("Kind", 0), ChangeKind.CHANGED))
        for row in rows or []
    ]


def path_stat_of(header: str) -> PathStat | None:
    """``X-Docker-Container-Path-Stat`` of ``HEAD /containers/{id}/archive``: base64 JSON
    with Go's FileMode (type bits high, permissions low). None if it does not parse."""
    try:
        data = json.loads(base64.b64decode(header))
        mode = int(data.get("mode", 0))
        return PathStat(
            name=str(data.get("name", "")),
            size=int(data.get("size", 0)),
            mode=mode & 0o777,
            is_dir=bool(mode & _GO_MODE_DIR),
            is_link=bool(mode & _GO_MODE_SYMLINK),
            link_target=str(data.get("linkTarget") or ""),
            mtime=parse_time(data.get("mtime")),
        )
    except (ValueError, TypeError, AttributeError):
        return None


def event_of(event: dict[str, Any]) -> EngineEvent | None:
    """One line of ``GET /events``; None for a container without a cuid."""
    attrs = (event.get("Actor") or {}).get("Attributes") or {}
    cuid = attrs.get("dockyard.cuid")
    if not cuid:
        return None
    nanos = event.get("timeNano")
    at = datetime.fromtimestamp(nanos / 1e9, UTC) if isinstance(nanos, int) and nanos > 0 else None
    return EngineEvent(cuid=cuid, action=str(event.get("Action", "")), attributes=attrs, time=at)
