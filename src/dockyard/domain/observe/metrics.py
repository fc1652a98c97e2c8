"""A running container's resource use (SPEC §4 ``/metrics``), answered from memory.

The engine's stats call takes a second or two, so a background collector samples every
container someone asked about within the last ``idle`` seconds, once per ``interval``:
all of them in one pass over their cgroup files (``ResourceReader``, a local engine), or,
where no cgroup is found (a remote engine), each through the engine's one-shot stats. A
request then answers from the last sample, with its age. CPU % is computed from two
samples as ``docker stats`` does (Δ container CPU time / Δ wall time * 100; one busy core
is 100).

The first request for a container nobody asked about lately samples it on the spot: two
readings ``window`` (0.1 s) apart, so it has CPU % over that window and age ~0. Through
the engine's stats (no cgroup) it is one reading, CPU % ``null`` until the collector's
next one. Ids and pids come from the engine's inspect, cached, refreshed on start events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.models import ContainerRecord, Status
from dockyard.domain.ports import (
    ContainerProcess,
    Engine,
    EngineEvent,
    ResourceReader,
    ResourceSample,
)
from dockyard.errors import DockyardError, NotFoundError, StateError

log = structlog.get_logger("dockyard.metrics")

LIVE = (Status.RUNNING, Status.PAUSED)
_RESTARTED = ("start", "restart")
_STOPPED = ("die", "destroy")
_INSPECT_AT_ONCE = 16


@dataclass
class _Watch:
    cuid: str
    wanted: float  # clock() of the last request
    proc: ContainerProcess | None = None
    engine_mode: bool = False  # no cgroup found: the engine's stats instead
    misses: int = 0
    last: ResourceSample | None = None
    received: float = 0.0  # clock() when `last` arrived
    cpu_percent: float | None = None
    busy: bool = False  # an engine sample is in flight
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def forget(self) -> None:
        self.proc = None
        self.last = None
        self.cpu_percent = None


class MetricsService:
    def __init__(
        self,
        containers: ContainerService,
        engine: Engine,
        reader: ResourceReader | None,
        *,
        interval: float = 1.0,
        idle: float = 60.0,
        window: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._containers = containers
        self._engine = engine
        self._reader = reader
        self.interval = interval
        self.idle = idle
        self.window = window
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def watched(self) -> list[str]:
        return list(self._watches)

    # -- the request ----------------------------------------------------------------

    async def get(self, principal: Principal, cuid: str) -> dict[str, Any]:
        principal.require(Permission.CONTAINERS_READ)
        record = await self._containers.owned(principal, cuid)
        if record.status not in LIVE:
            raise _not_running(record.status)
        watch = self._watches.get(record.cuid)
        if watch is None:
            watch = self._watches[record.cuid] = _Watch(record.cuid, self._clock())
        watch.wanted = self._clock()
        if not self._fresh(watch):
            async with watch.lock:  # concurrent first requests share one sampling
                if not self._fresh(watch):
                    await self._sample_now(watch)
        return self._view(record, watch)

    def _fresh(self, watch: _Watch) -> bool:
        if watch.last is None:
            return False
        # An engine sample takes ~1-2 s to make; allow for that on top of the interval.
        slack = 3 * self.interval + (5.0 if watch.engine_mode else 0.0)
        return self._clock() - watch.received <= slack

    async def _sample_now(self, watch: _Watch) -> None:
        proc = await self._engine.process(watch.cuid)
        if proc is None:
            raise NotFoundError("the container is gone from the engine", code="CONTAINER_MISSING")
        if proc.status not in LIVE:
            raise _not_running(proc.status)
        watch.proc = proc
        if self._reader is not None and not watch.engine_mode:
            first = (await self._reader.read([proc]))[0]
            if first is not None:
                # The measuring window for CPU %, not a wait for something to happen.
                await asyncio.sleep(self.window)
                second = (await self._reader.read([proc]))[0]
                if second is not None:
                    watch.last = None
                    self._apply(watch, first)
                    self._apply(watch, second)
                    return
            watch.engine_mode = True  # running, yet no cgroup here: a remote engine
        sample = await self._engine.stats_once(proc.container_id)
        if sample is None:
            raise _not_running(Status.EXITED)
        self._apply(watch, sample)

    def _apply(self, watch: _Watch, sample: ResourceSample) -> None:
        prev = watch.last
        watch.cpu_percent = cpu_percent(prev, sample)
        watch.last = sample
        watch.received = self._clock()

    def _view(self, record: ContainerRecord, watch: _Watch) -> dict[str, Any]:
        sample = watch.last
        if sample is None:  # it stopped while being sampled
            raise _not_running(Status.EXITED)
        age = (datetime.now(UTC) - sample.at).total_seconds() * 1000
        used, limit = sample.memory_used, sample.memory_limit
        return {
            "cuid": record.cuid,
            "status": record.status.value,
            "source": sample.source,
            "cpu_percent": watch.cpu_percent,
            "online_cpus": sample.online_cpus,
            "memory": {
                "used_bytes": used,
                "limit_bytes": limit,
                "percent": round(used * 100 / limit, 2) if used is not None and limit else None,
            },
            "network": {"rx_bytes": sample.net_rx, "tx_bytes": sample.net_tx},
            "block_io": {"read_bytes": sample.blk_read, "write_bytes": sample.blk_write},
            "pids": sample.pids,
            "sampled_at": sample.at.isoformat(),
            "sample_age_ms": max(round(age), 0),
        }

    # -- engine events (StateFollower's listener) ---------------------------------------

    def engine_event(self, event: EngineEvent) -> None:
        watch = self._watches.get(event.cuid)
        if watch is None:
            return
        action = event.action
        if action in _RESTARTED:
            # A new process (pid) and cgroup, perhaps a new container (a recreate).
            watch.forget()
            watch.engine_mode = False
            watch.misses = 0
        elif action in _STOPPED:
            watch.forget()
        elif action in ("pause", "unpause"):
            watch.proc = None  # its status changed; id and pid did not

    # -- the collector ------------------------------------------------------------------

    async def run_forever(self) -> None:
        try:
            while True:
                started = self._clock()
                try:
                    await self.tick()
                except DockyardError as exc:
                    log.warning("metrics.tick_failed", error=exc.code)
                except Exception as exc:  # a bad reading must not stop the collector
                    log.error("metrics.tick_crashed", exc_type=type(exc).__name__)
                elapsed = self._clock() - started
                await asyncio.sleep(max(self.interval - elapsed, self.interval / 10))
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def tick(self) -> None:
        """One pass: forget the unwanted, find the new, sample the running."""
        now = self._clock()
        for cuid, watch in list(self._watches.items()):
            if now - watch.wanted > self.idle:
                del self._watches[cuid]
        unknown = [w for w in self._watches.values() if w.proc is None]
        for start in range(0, len(unknown), _INSPECT_AT_ONCE):
            chunk = unknown[start : start + _INSPECT_AT_ONCE]
            found = await asyncio.gather(
                *(self._engine.process(w.cuid) for w in chunk), return_exceptions=True
            )
            for watch, proc in zip(chunk, found, strict=True):
                if isinstance(proc, ContainerProcess):
                    watch.proc = proc
                elif proc is None:
                    self._watches.pop(watch.cuid, None)  # gone from the engine
        live = [w for w in self._watches.values() if w.proc is not None and w.proc.status in LIVE]
        local = [w for w in live if not w.engine_mode and self._reader is not None]
        if local and self._reader is not None:
            samples = await self._reader.read([w.proc for w in local if w.proc is not None])
            for watch, sample in zip(local, samples, strict=True):
                if sample is None:
                    # Stopped meanwhile, or no cgroup here: inspect again, then decide.
                    watch.misses += 1
                    watch.proc = None
                    if watch.misses >= 2:
                        watch.engine_mode = True
                else:
                    watch.misses = 0
                    self._apply(watch, sample)
        for watch in live:
            if watch.engine_mode and not watch.busy:
                watch.busy = True
                task = asyncio.create_task(self._engine_sample(watch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _engine_sample(self, watch: _Watch) -> None:
        try:
            proc = watch.proc
            if proc is None:
                return
            sample = await self._engine.stats_once(proc.container_id)
            if sample is None:
                watch.forget()
            else:
                self._apply(watch, sample)
        except DockyardError as exc:
            log.warning("metrics.engine_sample_failed", cuid=watch.cuid, error=exc.code)
        finally:
            watch.busy = False


def cpu_percent(prev: ResourceSample | None, sample: ResourceSample) -> float | None:
    """Δ CPU time over Δ wall time between two samples of one source, in % of one core."""
    if prev is None or prev.source != sample.source:
        return None
    if prev.cpu_ns is None or sample.cpu_ns is None:
        return None
    wall = sample.clock_ns - prev.clock_ns
    used = sample.cpu_ns - prev.cpu_ns
    if wall <= 0 or used < 0:  # counters reset: the container restarted
        return None
    return round(used * 100 / wall, 2)


def _not_running(status: Status) -> StateError:
    return StateError(
        f"container is {status.value}; metrics exist only while it runs",
        code="CONTAINER_NOT_RUNNING",
        details={"status": status.value},
    )
