"""Idle stops and expiry (issue 11): one scheduler drives every container's timers.

A container may carry an ``idle_timeout`` (stopped when running and unused that long)
and an ``expires_at`` (deleted then). Both live in the container's record, so they
survive a restart: at start-up every record with a timer is scheduled again, and one
that fell due while Dockyard was down fires at once.

The scheduler is a heap of due times and one task sleeping until the earliest; a change
(create, PATCH, delete, a start seen on the engine) wakes it. Nothing is polled per
container, so ten thousand quiet timers cost nothing until one is due. An entry in the
heap is a hint: when it fires, the record (and the newest activity, which may not be
stored yet) is read again and the timer either acts or moves to its new due time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog

from dockyard.domain.automation.activity import ActivitySink
from dockyard.domain.models import ContainerRecord, Status
from dockyard.domain.ports import EngineEvent
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.timers")

RETRY_AFTER = 30.0  # seconds: a stop or delete the engine refused is tried again then
MAX_SLEEP = 3600.0  # wake hourly even when nothing is due: the wall clock may have jumped


def utcnow() -> datetime:
    return datetime.now(UTC)


class Timer(StrEnum):
    IDLE = "idle"
    EXPIRY = "expiry"
    REMOVE = "remove"  # auto_remove: its main process has ended


# Seconds between an auto_remove container's end and its removal: a client that started
# it (``dockyard run --rm``) opens its logs and reads its exit code in that time, and
# needs not wait for the removal. Generous, so that a client on a loaded machine (whose
# own start-up and create can take seconds) still finds the output of a quick exit.
REMOVE_AFTER = 5.0


class TimedContainers(Protocol):
    """What the scheduler needs of the containers (``ContainerService``)."""

    async def timed(self) -> list[ContainerRecord]:
        """Every record with an idle timeout or an expiry."""
        ...

    async def lookup(self, cuid: str) -> ContainerRecord | None: ...

    async def idle_stop(self, record: ContainerRecord) -> None: ...

    async def expire(self, record: ContainerRecord) -> None: ...

    async def auto_remove(self, record: ContainerRecord) -> bool: ...


def idle_since(record: ContainerRecord, activity: datetime | None) -> datetime:
    """The last sign of use: activity (in memory or stored), the last start, the create."""
    moments = [record.created_at, record.started_at, record.last_activity_at, activity]
    return max(m for m in moments if m is not None)


class TimerScheduler:
    """Keeps the due times of all timers and acts on each when it comes."""

    def __init__(
        self,
        containers: TimedContainers,
        activity: ActivitySink,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._containers = containers
        self._activity = activity
        self._clock = clock
        self._heap: list[tuple[float, int, str, Timer]] = []
        self._due: dict[tuple[str, Timer], float] = {}
        self._idle: set[str] = set()  # cuids with an idle timeout, running or not
        self._auto: set[str] = set()  # cuids created with auto_remove
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._actions: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- the timers --------------------------------------------------------------

    def watch(self, record: ContainerRecord) -> None:
        """(Re)schedule the record's timers after a create or a change."""
        cuid = record.cuid
        if record.idle_timeout is None:
            self._idle.discard(cuid)
            self._cancel(cuid, Timer.IDLE)
        else:
            self._idle.add(cuid)
            since = idle_since(record, self._activity.last(cuid))
            self._set(cuid, Timer.IDLE, since + timedelta(seconds=record.idle_timeout))
        if record.expires_at is None:
            self._cancel(cuid, Timer.EXPIRY)
        else:
            self._set(cuid, Timer.EXPIRY, record.expires_at)
        if record.spec.auto_remove:
            self._auto.add(cuid)
            if record.status in (Status.EXITED, Status.DEAD):  # ended before it was watched
                self.remove_soon(cuid)

    def remove_soon(self, cuid: str) -> None:
        """An auto_remove container has ended: removed in REMOVE_AFTER seconds."""
        self._set(cuid, Timer.REMOVE, self._clock() + timedelta(seconds=REMOVE_AFTER))

    def forget(self, cuid: str) -> None:
        """The container is gone: its timers with it."""
        self._idle.discard(cuid)
        self._auto.discard(cuid)
        self._cancel(cuid, Timer.IDLE)
        self._cancel(cuid, Timer.EXPIRY)

    def engine_event(self, event: EngineEvent) -> None:
        """A start (by anyone: the API, a restart policy, the CLI) arms the idle timer
        again; it is looked at now and moves to its due time."""
        if event.action == "start" and event.cuid in self._idle:
            self._set(event.cuid, Timer.IDLE, self._clock())
        elif event.action == "die" and event.cuid in self._auto:
            self.remove_soon(event.cuid)

    def due_at(self, cuid: str, timer: Timer) -> datetime | None:
        ts = self._due.get((cuid, timer))
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    def next_due(self) -> datetime | None:
        self._drop_stale()
        return datetime.fromtimestamp(self._heap[0][0], UTC) if self._heap else None

    def __len__(self) -> int:
        return len(self._due)

    def _set(self, cuid: str, timer: Timer, when: datetime) -> None:
        ts = when.timestamp()
        if self._due.get((cuid, timer)) == ts:
            return
        wake = not self._heap or ts < self._heap[0][0]
        self._due[(cuid, timer)] = ts
        heapq.heappush(self._heap, (ts, next(self._order), cuid, timer))
        if wake:
            self._wake.set()

    def _cancel(self, cuid: str, timer: Timer) -> None:
        # The heap entry stays and is skipped when it comes up (no O(n) removal).
        self._due.pop((cuid, timer), None)

    def _drop_stale(self) -> None:
        while self._heap:
            ts, _, cuid, timer = self._heap[0]
            if self._due.get((cuid, timer)) == ts:
                return
            heapq.heappop(self._heap)

    # -- firing ------------------------------------------------------------------

    async def load(self) -> int:
        """Schedule every stored timer (start-up); overdue ones fire at the first look."""
        records = await self._containers.timed()
        for record in records:
            self.watch(record)
        return len(records)

    def fire_due(self) -> list[asyncio.Task[None]]:
        """Start the action of every timer due now; returns their tasks."""
        now = self._clock().timestamp()
        started: list[asyncio.Task[None]] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return started
            _, _, cuid, timer = heapq.heappop(self._heap)
            del self._due[(cuid, timer)]
            task = asyncio.create_task(self._fire(cuid, timer), name=f"timer-{timer}-{cuid}")
            self._actions.add(task)
            task.add_done_callback(self._actions.discard)
            started.append(task)

    async def _fire(self, cuid: str, timer: Timer) -> None:
        try:
            record = await self._containers.lookup(cuid)
            if record is None:
                self.forget(cuid)
            elif timer is Timer.IDLE:
                await self._fire_idle(record)
            elif timer is Timer.REMOVE:
                if await self._containers.auto_remove(record):
                    self.forget(cuid)
            else:
                await self._fire_expiry(record)
        except DockyardError as exc:
            log.warning("timer.failed", cuid=cuid, timer=timer.value, error=exc.code)
            self._set(cuid, timer, self._clock() + timedelta(seconds=RETRY_AFTER))
        except Exception as exc:  # the store is down, or a bug: try again later
            log.error("timer.crashed", cuid=cuid, timer=timer.value, exc_type=type(exc).__name__)
            self._set(cuid, timer, self._clock() + timedelta(seconds=RETRY_AFTER))

    async def _fire_idle(self, record: ContainerRecord) -> None:
        if record.idle_timeout is None:
            self._idle.discard(record.cuid)
            return
        since = idle_since(record, self._activity.last(record.cuid))
        due = since + timedelta(seconds=record.idle_timeout)
        if due > self._clock():
            self._set(record.cuid, Timer.IDLE, due)  # used since: later
        elif record.status is Status.RUNNING:
            await self._containers.idle_stop(record)
        # Not running: nothing to stop; its next start arms the timer (engine_event).

    async def _fire_expiry(self, record: ContainerRecord) -> None:
        if record.expires_at is None:
            return
        if record.expires_at > self._clock():
            self._set(record.cuid, Timer.EXPIRY, record.expires_at)
            return
        await self._containers.expire(record)
        self.forget(record.cuid)

    # -- the task ----------------------------------------------------------------

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            self.fire_due()
            nxt = self.next_due()
            delay = MAX_SLEEP
            if nxt is not None:
                delay = min(MAX_SLEEP, max(0.0, (nxt - self._clock()).total_seconds()))
            # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel that comes as
            # the wake is set (a watch() at the moment of a stop), and the task ran on.
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def start(self) -> None:
        """Load the stored timers and start the one task (after the start-up reconcile)."""
        if self._task is not None:
            return
        count = await self.load()
        self._task = asyncio.create_task(self.run_forever(), name="timers")
        log.info("timers.started", containers=count)

    async def stop(self) -> None:
        """The task and any action under way end (an interrupted one is overdue, and
        done at the next start)."""
        tasks = [*([self._task] if self._task else []), *self._actions]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
