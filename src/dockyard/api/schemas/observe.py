"""Events and metrics (SPEC §7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso
from dockyard.domain.models import Status
from dockyard.domain.observe.events import Event


class EventOut(Out):
    """One event; also the ``data:`` of a Server-Sent Event (``follow=true``)."""

    id: int = Field(description="increasing; a Last-Event-ID to resume after")
    time: Instant
    type: str = Field(description="an engine event (start, die, oom, ...) or container.*")
    source: str = Field(description="engine or api")
    cuid: str | None
    owner: str | None
    actor: str | None = Field(description="who asked, for Dockyard's own actions")
    details: dict[str, Any]

    @classmethod
    def from_event(cls, event: Event) -> EventOut:
        return cls(
            id=event.seq,
            time=iso(event.time),
            type=event.type,
            source=event.source,
            cuid=event.cuid,
            owner=event.owner,
            actor=event.actor,
            details=event.details,
        )


class EventPage(Out):
    events: list[EventOut]
    next_cursor: NextCursor


class MemoryOut(Out):
    used_bytes: int | None = Field(description="usage minus the inactive page cache")
    limit_bytes: int | None = Field(description="the container's limit, or the host's memory")
    percent: float | None


class NetworkOut(Out):
    rx_bytes: int | None
    tx_bytes: int | None


class BlockIOOut(Out):
    read_bytes: int | None
    write_bytes: int | None


class MetricsOut(Out):
    """The latest resource sample of a running container and its age."""

    cuid: str
    status: Status
    source: Literal["cgroup", "engine"]
    cpu_percent: float | None = Field(description="of one core; null until two samples")
    online_cpus: int | None
    memory: MemoryOut
    network: NetworkOut
    block_io: BlockIOOut
    pids: int | None
    sampled_at: Instant
    sample_age_ms: int
