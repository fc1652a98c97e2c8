"""Engine and cluster bodies: ours, and Shipyard's (seed 004) beside them.

TLS files go in (``tls`` or Shipyard's ``ssl_cert``/``ssl_key``/``ca_cert``), never out:
an engine shows only ``tls: true``. Memory is in bytes in our fields (``"8g"`` accepted
in), in MiB in Shipyard's (``engine.memory``, the seed fields of ``/cluster/info``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from dockyard.api.schemas.common import Instant, Out, iso, iso_or_none
from dockyard.domain.engines.cluster import ClusterInfo, EngineUsage
from dockyard.domain.engines.models import (
    EngineChanges,
    EngineDraft,
    EngineKind,
    EngineView,
    TlsFiles,
    labels_of_list,
)
from dockyard.domain.models import Resources, memory_bytes
from dockyard.errors import ValidationError

MIB = 1024 * 1024
MAX_MEMORY = 1024**5  # 1 PiB: an engine's declared memory (and the database's integers)
Cpus = Annotated[StrictFloat | StrictInt, Field(gt=0, le=100_000)]
Memory = Annotated[
    StrictInt | str, Field(description='bytes, or "512m", "64g"; Shipyard\'s engine.memory: MiB')
]
Labels = dict[str, str] | list[Annotated[str, Field(max_length=320)]]
Pem = Annotated[str, Field(max_length=64 * 1024)]


class TlsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca: Pem = Field(description="PEM of the CA that signed the engine's certificate")
    cert: Pem = Field(description="PEM of Dockyard's client certificate")
    key: Pem = Field(description="PEM of its key; stored encrypted, never returned")


class ShipyardEngine(BaseModel):
    """Seed 004's ``engine`` object."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=64)
    addr: str = Field(min_length=1, max_length=512)
    cpus: Cpus | None = None
    memory: StrictInt | None = Field(default=None, gt=0, le=MAX_MEMORY // MIB, description="MiB")
    labels: list[Annotated[str, Field(max_length=320)]] = Field(default_factory=list)


def _memory(value: int | str | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
        try:
            value = memory_bytes(Resources(memory=text).memory or text)
        except ValueError:
            raise ValidationError(
                'memory must look like "512m", "64g" or a byte count',
                code="INVALID_FIELD",
                details={"field": field, "provided": text[:40]},
            ) from None
    if not 0 < value <= MAX_MEMORY:
        raise ValidationError(
            "memory must be positive and at most 1 PiB",
            code="INVALID_FIELD",
            details={"field": field},
        )
    return value


def _labels(value: Labels | None) -> dict[str, str]:
    if value is None:
        return {}
    return labels_of_list(value) if isinstance(value, list) else value


class CreateEngine(BaseModel):
    """Ours (``addr`` …), or Shipyard's (``engine`` and the ``ssl_*`` files)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=64, description="generated if absent")
    addr: str | None = Field(
        default=None,
        max_length=512,
        description="unix:///path, tcp://host:port (with tls), or ssh://user@host[:port]",
    )
    kind: EngineKind | None = Field(default=None, description="remote unless marked")
    labels: Labels | None = None
    cpus: Cpus | None = None
    memory: Memory | None = None
    tls: TlsIn | None = None
    engine: ShipyardEngine | None = None
    ssl_cert: Pem | None = None
    ssl_key: Pem | None = None
    ca_cert: Pem | None = None

    def draft(self) -> EngineDraft:
        if self.engine is not None and self.addr is None:
            return self._shipyard(self.engine)
        if self.addr is None:
            raise ValidationError(
                "addr is required (or Shipyard's engine.addr)",
                code="MISSING_FIELD",
                details={"field": "addr"},
            )
        tls = TlsFiles(self.tls.ca, self.tls.cert, self.tls.key) if self.tls else None
        return EngineDraft(
            addr=self.addr,
            id=self.id,
            kind=self.kind,
            labels=_labels(self.labels),
            cpus=float(self.cpus) if self.cpus is not None else None,
            memory=_memory(self.memory, "memory"),
            tls=tls or self._shipyard_tls(),
        )

    def _shipyard(self, engine: ShipyardEngine) -> EngineDraft:
        return EngineDraft(
            addr=engine.addr,
            id=engine.id or self.id,
            kind=self.kind,
            labels=labels_of_list(engine.labels),
            cpus=float(engine.cpus) if engine.cpus is not None else None,
            memory=engine.memory * MIB if engine.memory is not None else None,
            tls=self._shipyard_tls(),
        )

    def _shipyard_tls(self) -> TlsFiles | None:
        files = (self.ca_cert or "", self.ssl_cert or "", self.ssl_key or "")
        if not any(files):
            return None  # the seed sends "" for each when there are none
        return TlsFiles(*files)


class UpdateEngine(BaseModel):
    """Only the fields given change; a null ``cpus``/``memory``: what the engine reports."""

    model_config = ConfigDict(extra="forbid")

    labels: Labels | None = None
    cpus: Cpus | None = None
    memory: Memory | None = None
    draining: StrictBool | None = None
    host_access: StrictBool | None = Field(
        default=None,
        description="let admins' containers here ask for host access (privileged, host "
        "paths, devices, capabilities); off by default",
    )

    def changes(self) -> EngineChanges:
        given = set(self.model_fields_set)
        for name in ("draining", "host_access"):
            if getattr(self, name) is None:
                given.discard(name)
        return EngineChanges(
            given=frozenset(given),
            labels=_labels(self.labels),
            cpus=float(self.cpus) if self.cpus is not None else None,
            memory=_memory(self.memory, "memory"),
            draining=self.draining,
            host_access=self.host_access,
        )


class ShipyardEngineOut(Out):
    id: str
    addr: str
    cpus: float | None
    memory: int | None = Field(description="MiB")
    labels: list[str]


class EngineContainersOut(Out):
    running: int
    paused: int
    stopped: int


class EngineOut(Out):
    id: str
    addr: str
    kind: str
    labels: dict[str, str]
    status: str = Field(description="healthy | unreachable | draining")
    draining: bool
    host_access: bool = Field(description="admins' containers here may ask for host access")
    tls: bool = Field(description="TLS client files are stored (they are never shown)")
    cpus: float | None = Field(description="declared, else what the engine reports")
    memory: int | None = Field(description="bytes; declared, else what the engine reports")
    declared_cpus: float | None
    declared_memory: int | None
    version: str | None
    api_version: str | None
    os: str | None
    engine_id: str | None = Field(description="the engine's own ID")
    swarm: str | None = Field(description="the engine's Swarm state (inactive, active, …)")
    containers: EngineContainersOut | None = Field(description="as the engine counts them")
    images: int | None
    last_seen: Instant | None
    last_error: str | None
    created_at: Instant
    updated_at: Instant
    engine: ShipyardEngineOut = Field(description="Shipyard's shape (seed 004)")

    @classmethod
    def of(cls, view: EngineView) -> EngineOut:
        record, health = view.record, view.health
        facts = health.facts
        labels = [f"{k}={v}" if v else k for k, v in record.labels.items()]
        return cls(
            id=record.id,
            addr=record.addr,
            kind=record.kind.value,
            labels=record.labels,
            status=view.status.value,
            draining=record.draining,
            host_access=record.host_access,
            tls=record.tls is not None,
            cpus=view.cpus,
            memory=view.memory,
            declared_cpus=record.cpus,
            declared_memory=record.memory,
            version=facts.version if facts else None,
            api_version=facts.api_version if facts else None,
            os=facts.os if facts else None,
            engine_id=facts.engine_id if facts else None,
            swarm=facts.swarm if facts else None,
            containers=EngineContainersOut(
                running=facts.containers_running,
                paused=facts.containers_paused,
                stopped=facts.containers_stopped,
            )
            if facts
            else None,
            images=facts.images if facts else None,
            last_seen=iso_or_none(health.last_seen),
            last_error=health.last_error,
            created_at=iso(record.created_at),
            updated_at=iso(record.updated_at),
            engine=ShipyardEngineOut(
                id=record.id,
                addr=record.addr,
                cpus=view.cpus,
                memory=view.memory // MIB if view.memory is not None else None,
                labels=labels,
            ),
        )


class EngineList(Out):
    engines: list[EngineOut]


class EngineUsageOut(Out):
    id: str
    status: str
    cpus: float
    memory: int = Field(description="bytes")
    reserved_cpus: float = Field(description="what Dockyard's containers there declare")
    reserved_memory: int = Field(description="bytes")
    containers: dict[str, int] = Field(description="Dockyard's containers by status")
    container_count: int
    images: int

    @classmethod
    def of(cls, usage: EngineUsage) -> EngineUsageOut:
        return cls(
            id=usage.id,
            status=usage.status,
            cpus=usage.cpus,
            memory=usage.memory,
            reserved_cpus=usage.reserved_cpus,
            reserved_memory=usage.reserved_memory,
            containers=usage.containers,
            container_count=usage.container_count,
            images=usage.images,
        )


class ClusterInfoOut(Out):
    """Per engine and in total; the first seven fields are Shipyard's (memory in MiB)."""

    cpus: float
    memory: int = Field(description="MiB (Shipyard's)")
    reserved_cpus: float
    reserved_memory: int = Field(description="MiB (Shipyard's)")
    engine_count: int
    container_count: int
    image_count: int
    engines: list[EngineUsageOut]
    total: EngineUsageOut

    @classmethod
    def of(cls, info: ClusterInfo) -> ClusterInfoOut:
        total = info.total
        return cls(
            cpus=total.cpus,
            memory=total.memory // MIB,
            reserved_cpus=total.reserved_cpus,
            reserved_memory=total.reserved_memory // MIB,
            engine_count=len(info.engines),
            container_count=total.container_count,
            image_count=total.images,
            engines=[EngineUsageOut.of(e) for e in info.engines],
            total=EngineUsageOut.of(total),
        )
