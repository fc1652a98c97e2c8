"""``GET /cluster/info``: capacity, reservations and contents, per engine and in total.

Capacity is an engine's declared ``cpus``/``memory``, else what it reports. Reserved is
what Dockyard's containers there declare (``resources``, the defaults where they name
none) times their replicas: every record but those ``missing`` or ``failed``, whose
containers do not exist. ``reserved_by_engine`` is that sum, for this page and for
placement alike. Containers by status are Dockyard's records; images are what the engine
last reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from dockyard.domain.models import Resources, Status, memory_bytes

if TYPE_CHECKING:
    from dockyard.domain.engines.models import EngineView

_HOLD_NOTHING = frozenset({Status.MISSING.value, Status.FAILED.value})


@dataclass(frozen=True)
class ContainerUse:
    """One container record, as the cluster counts it."""

    engine: str
    status: str
    cpus: float | None
    memory: str | None
    replicas: int = 1


@dataclass(frozen=True)
class Reserved:
    """What Dockyard's containers hold on one engine."""

    cpus: float = 0.0
    memory: int = 0


@dataclass(frozen=True)
class EngineUsage:
    id: str
    status: str
    cpus: float
    memory: int
    reserved_cpus: float
    reserved_memory: int
    containers: dict[str, int] = field(default_factory=dict)
    images: int = 0

    @property
    def container_count(self) -> int:
        return sum(self.containers.values())


@dataclass(frozen=True)
class ClusterInfo:
    engines: list[EngineUsage]
    total: EngineUsage


def reserved_by_engine(uses: Iterable[ContainerUse], defaults: Resources) -> dict[str, Reserved]:
    """Per engine: its containers' CPUs and memory (bytes) times their replicas, the
    defaults where a record names none; records that hold nothing are left out."""
    sums: dict[str, list[float]] = {}
    default_cpus = defaults.cpus or 0.0
    default_memory = _bytes(defaults.memory) if defaults.memory else 0
    for use in uses:
        if use.status in _HOLD_NOTHING:
            continue
        count = use.replicas if use.replicas > 0 else 1
        held = sums.get(use.engine)
        if held is None:
            held = sums[use.engine] = [0.0, 0.0]
        held[0] += (use.cpus if use.cpus is not None else default_cpus) * count
        held[1] += (_bytes(use.memory) if use.memory is not None else default_memory) * count
    return {engine: Reserved(round(c, 6), int(m)) for engine, (c, m) in sums.items()}


@lru_cache(maxsize=1024)
def _bytes(memory: str) -> int:
    """``memory_bytes``, remembered: records repeat a few sizes ("512m") many times."""
    return memory_bytes(memory)


def cluster_info(
    views: Sequence[EngineView], uses: Sequence[ContainerUse], defaults: Resources
) -> ClusterInfo:
    by_engine: dict[str, list[ContainerUse]] = {}
    for use in uses:
        by_engine.setdefault(use.engine, []).append(use)
    reserved = reserved_by_engine(uses, defaults)
    engines: list[EngineUsage] = []
    for view in views:
        mine = by_engine.get(view.record.id, [])
        held = reserved.get(view.record.id, Reserved())
        facts = view.health.facts
        engines.append(
            EngineUsage(
                id=view.record.id,
                status=view.status.value,
                cpus=view.cpus or 0.0,
                memory=view.memory or 0,
                reserved_cpus=held.cpus,
                reserved_memory=held.memory,
                containers=dict(Counter(u.status for u in mine)),
                images=facts.images if facts else 0,
            )
        )
    containers: Counter[str] = Counter()
    for usage in engines:
        containers.update(usage.containers)
    total = EngineUsage(
        id="total",
        status="",
        cpus=round(sum(e.cpus for e in engines), 6),
        memory=sum(e.memory for e in engines),
        reserved_cpus=round(sum(e.reserved_cpus for e in engines), 6),
        reserved_memory=sum(e.reserved_memory for e in engines),
        containers=dict(containers),
        images=sum(e.images for e in engines),
    )
    return ClusterInfo(engines, total)
