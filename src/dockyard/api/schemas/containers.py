"""Container bodies (SPEC §4): create, PATCH and ports requests; the container object."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator
from typing_extensions import TypedDict

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso, iso_or_none
from dockyard.domain.containers.ports import url_of
from dockyard.domain.engines.models import MAX_LABELS, is_label
from dockyard.domain.engines.placement import PlacementRequest
from dockyard.domain.models import (
    ContainerRecord,
    ContainerSpec,
    HostAccess,
    LiveState,
    Port,
    Resources,
    Status,
)
from dockyard.domain.ports import ReplicaState


class TimerFields(BaseModel):
    """The timers of create and PATCH (issue 11): kept in the record, not the spec."""

    idle_timeout: float | None = Field(
        default=None,
        gt=0,
        description="seconds without activity before a running container is stopped"
        " (at create: IDLE_TIMEOUT when left out; null: never)",
    )
    ttl: float | None = Field(
        default=None, gt=0, description="seconds from create before the container is deleted"
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="when the container is deleted (instead of ttl)"
    )


class CreateContainer(ContainerSpec, TimerFields):
    start: bool = Field(default=False, description="start it right away")
    owner: str | None = Field(
        default=None,
        max_length=64,
        description="the account it is created for (admins only; its quotas apply)",
    )
    # Create-time inputs, put into /app before the first start; not part of the spec.
    script: str | None = Field(
        default=None,
        max_length=16 * 1024 * 1024,
        description="base64 text written to /app/boot.py",
    )
    script_url: str | None = Field(
        default=None, max_length=4096, description="fetched and written to /app/boot.py"
    )
    data_url: str | None = Field(
        default=None,
        max_length=4096,
        description="fetched into data_path; a ZIP or tar (.gz, .bz2, .xz) is unpacked",
    )
    data_path: str | None = Field(
        default=None, description="folder under /app for data_url (default /app)"
    )
    # Placement (issue 12, docs/engines.md): not part of the spec; the record keeps the
    # engine chosen.
    engine: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="the engine to run it on (GET /engines); 400 UNKNOWN_ENGINE if none",
    )
    constraints: dict[str, str] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description='engine labels it needs, e.g. {"region": "eu"}; 409 NO_CAPACITY when'
        " no engine with them has room",
    )

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, val in (value or {}).items():
            if not is_label(key, val):
                raise ValueError(
                    f"constraint {key[:80]!r}: a key of letters, digits and _.:/- (at most"
                    " 63), a value of at most 255 characters"
                )
        return value

    @property
    def placement(self) -> PlacementRequest:
        asked = self.host is not None and self.host.asked
        return PlacementRequest(self.engine, self.constraints or {}, host_access=asked)


class UpdateContainer(TimerFields):
    """PATCH body: env merged (null removes a key), tags replaced, resources merged,
    image replaced; ``status`` ("stopped" | "running", alone) stops or starts it."""

    model_config = ConfigDict(extra="forbid")

    env: dict[str, str | None] | None = None
    tags: list[str] | None = None
    resources: dict[str, Any] | None = None
    image: str | None = None
    labels: dict[str, str] | None = None
    restart: str | None = None
    command: str | list[str] | None = None
    name: str | None = None
    status: Literal["stopped", "running"] | None = None


class PortsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ports: list[Port] = Field(max_length=64)


class ScaleBody(BaseModel):
    """``{"replicas": N}`` (or ``?count=N`` with no body): 1..MAX_REPLICAS."""

    model_config = ConfigDict(extra="forbid")
    replicas: StrictInt | None = Field(
        default=None, description="how many replicas run (1..MAX_REPLICAS)"
    )


class ResourcesOut(TypedDict, total=False):
    """The limits that are set; an unset one is left out."""

    cpus: float
    memory: str
    pids: int


def _resources(resources: Resources) -> ResourcesOut:
    out: ResourcesOut = {}
    if resources.cpus is not None:
        out["cpus"] = resources.cpus
    if resources.memory is not None:
        out["memory"] = resources.memory
    if resources.pids is not None:
        out["pids"] = resources.pids
    return out


class PortOut(Out):
    """A published port; ``url`` is ready to open (tcp; null for udp)."""

    container: int
    host: int | None
    protocol: Literal["tcp", "udp"]
    url: str | None


class ReplicaOut(Out):
    """One replica: index 1 is the container itself (``/ws/{cuid}?replica=K``,
    ``/logs?replica=K`` reach the others)."""

    index: int
    status: Status
    ports: list[PortOut]


class ContainerOut(Out):
    """The container object of SPEC §4 (``env`` included: only its owner and admins
    see a container at all)."""

    cuid: str
    name: str | None
    image: str
    status: Status | Literal["unknown"] = Field(
        description="`unknown`: its engine cannot be reached now (see engine_last_seen)"
    )
    env: dict[str, str]
    tags: list[str]
    labels: dict[str, str]
    command: str | list[str] | None
    resources: ResourcesOut
    ports: list[PortOut]
    publish_all: bool
    auto_remove: bool = Field(
        default=False, description="removed by the service once its main process has exited"
    )
    restart: str
    restart_count: int | None = Field(description="the engine's count of automatic restarts")
    network: Literal["default", "none"]
    owner: str
    engine: str
    constraints: dict[str, str] = Field(
        default_factory=dict,
        description="the engine labels asked at create (on a swarm engine also the"
        " nodes' labels: node.labels.K == V)",
    )
    engine_last_seen: Instant | None = Field(
        default=None, description="while its engine cannot be reached: when it last answered"
    )
    host: HostAccess | None = Field(
        default=None, description="the host access it was given (an admin's container)"
    )
    created_at: Instant
    started_at: Instant | None
    finished_at: Instant | None
    exit_code: int | None
    error: str | None
    last_activity_at: Instant | None = Field(
        description="the last terminal input, exec, upload, download or check-in"
    )
    idle_timeout: float | None = Field(description="seconds; null: never stopped for idleness")
    expires_at: Instant | None = Field(description="when it is deleted; null: never")
    replicas: list[ReplicaOut] = Field(
        description="the replicas (POST /containers/{cuid}/scale); the first is this one"
    )

    @classmethod
    def from_record(
        cls,
        record: ContainerRecord,
        public_host: str,
        replicas: list[ReplicaState],
        *,
        unreachable: bool = False,
        last_seen: datetime | None = None,
    ) -> ContainerOut:
        """``unreachable``: its engine does not answer now (the status reads ``unknown``);
        ``last_seen``: when it last did."""
        spec = record.spec
        return cls(
            cuid=record.cuid,
            name=spec.name,
            image=spec.image,
            status="unknown" if unreachable else record.status,
            env=spec.env,
            tags=spec.tags,
            labels=spec.labels,
            command=spec.command,
            resources=_resources(spec.resources),
            ports=[_port(p, public_host) for p in spec.ports],
            publish_all=spec.publish_all,
            auto_remove=spec.auto_remove,
            restart=spec.restart,
            restart_count=record.restart_count,
            network=spec.network,
            owner=record.owner,
            engine=record.engine,
            constraints=record.constraints,
            engine_last_seen=iso_or_none(last_seen) if unreachable else None,
            host=spec.host,
            created_at=iso(record.created_at),
            started_at=iso_or_none(record.started_at),
            finished_at=iso_or_none(record.finished_at),
            exit_code=record.exit_code,
            error=record.error,
            last_activity_at=iso_or_none(record.last_activity_at),
            idle_timeout=record.idle_timeout,
            expires_at=iso_or_none(record.expires_at),
            replicas=[
                ReplicaOut(
                    index=r.index,
                    status=r.status,
                    ports=[_port(p, public_host) for p in r.ports],
                )
                for r in replicas
            ],
        )


def _port(port: Port, public_host: str) -> PortOut:
    return PortOut(
        container=port.container,
        host=port.host,
        protocol=port.protocol,
        url=url_of(public_host, port),
    )


class ContainerPage(Out):
    containers: list[ContainerOut]
    next_cursor: NextCursor


class ContainerStatusOut(Out):
    """What ``GET /containers/{cuid}/status`` answers."""

    cuid: str
    status: Status
    exit_code: int | None
    oom_killed: bool = Field(description="the engine's flag, or exit 137 after an oom event")
    started_at: Instant | None
    finished_at: Instant | None
    restart_count: int
    health: str | None = Field(description="starting, healthy, unhealthy; null: no check")
    error: str | None

    @classmethod
    def from_state(
        cls, record: ContainerRecord, state: LiveState, *, oom_killed: bool
    ) -> ContainerStatusOut:
        return cls(
            cuid=record.cuid,
            status=record.status,
            exit_code=record.exit_code,
            oom_killed=oom_killed,
            started_at=iso_or_none(record.started_at),
            finished_at=iso_or_none(record.finished_at),
            restart_count=state.restart_count,
            health=state.health,
            error=record.error,
        )


class CheckInOut(Out):
    """The answer to a check-in: the activity now on record, and when an idle stop
    would come without another."""

    cuid: str
    last_activity_at: Instant
    idle_timeout: float | None
    idle_stop_at: Instant | None
    expires_at: Instant | None
