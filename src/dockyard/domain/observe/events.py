"""What happened to containers (``GET /events``), kept in the store so that history
survives restarts.

Engine events (lifecycle, OOM, health) come from ``StateFollower``; Dockyard's own
actions (created, updated, deleted, start/stop/…, by whom) from the API. Both are queued
without I/O, so the path that keeps statuses current never waits for this one; one
``BatchWriter`` appends the queue in batches (and drains it at stop), wakes the
followers (``follow=true``) and trims the table to the newest ``max_events`` every
minute. Each event carries its container's owner: an account sees the events of its own
containers, admins all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.batching import BatchWriter
from dockyard.domain.models import utcnow
from dockyard.domain.observe.event_types import ENGINE_TYPES, EVENT_TYPES
from dockyard.domain.observe.streams import LeasedStream, SessionLimiter, parse_instant
from dockyard.domain.paging import Page, before, check_limit, page_of
from dockyard.domain.ports import EngineEvent
from dockyard.errors import ValidationError

log = structlog.get_logger("dockyard.events")

MAX_PAGE = 1000
FOLLOW_BATCH = 500
WRITE_BATCH = 500
WRITE_LINGER = 0.03  # seconds an event may wait for others before its commit (batching.py)
MAX_PENDING = 10_000
TRIM_INTERVAL = 60.0
KEEPALIVE = 15.0
RECENT_EXIT = timedelta(seconds=5)  # events of an exit this recent may still be on the way


@dataclass
class Event:
    type: str
    source: str  # "engine" | "api"
    cuid: str | None
    owner: str | None
    time: datetime = field(default_factory=utcnow)
    actor: str | None = None  # who asked, for Dockyard's own actions
    details: dict[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True)
class EventFilter:
    cuid: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class EventQuery:
    owner: str | None = None  # None: every owner (admins)
    cuid: str | None = None
    types: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None
    after_seq: int | None = None
    limit: int = 100
    oldest_first: bool = False


class EventRepository(Protocol):
    async def append(self, events: list[Event]) -> int:
        """Store the events in order, set their ``seq``; the last seq written."""
        ...

    async def query(self, query: EventQuery) -> list[Event]: ...
    async def last_seq(self) -> int: ...
    async def trim(self, keep: int) -> int: ...


def event_filter(
    *, cuid: str | None, types: str | None, since: str | None, until: str | None
) -> EventFilter:
    wanted: list[str] = []
    for part in (types or "").split(","):
        part = part.strip()
        if not part:
            continue
        if part not in EVENT_TYPES:
            raise ValidationError(
                f"unknown event type {part!r}",
                code="INVALID_EVENT_TYPE",
                details={"field": "type", "provided": part[:64], "allowed": sorted(EVENT_TYPES)},
            )
        wanted.append(part)
    return EventFilter(
        cuid=cuid or None,
        types=tuple(dict.fromkeys(wanted)),
        since=parse_instant(since, "since"),
        until=parse_instant(until, "until"),
    )


def from_engine(event: EngineEvent) -> Event | None:
    """The engine's container event as ours; None for what is not recorded (exec, …)."""
    kind, _, rest = event.action.partition(":")
    kind = kind.strip()
    if kind not in ENGINE_TYPES:
        return None
    details: dict[str, Any] = {}
    attrs = event.attributes
    if kind == "die":
        with contextlib.suppress(ValueError):
            details["exit_code"] = int(attrs.get("exitCode", ""))
    elif kind == "kill" and "signal" in attrs:
        details["signal"] = attrs["signal"]
    elif kind == "health_status":
        details["status"] = rest.strip()
    return Event(
        type=kind,
        source="engine",
        cuid=event.cuid,
        owner=attrs.get("dockyard.owner"),
        time=event.time or utcnow(),
        details=details,
    )


class EventService:
    def __init__(
        self,
        repo: EventRepository,
        *,
        max_events: int,
        follow_max: int,
        max_pending: int = MAX_PENDING,
        keepalive: float = KEEPALIVE,
        trim_interval: float = TRIM_INTERVAL,
    ) -> None:
        self._repo = repo
        self.max_events = max_events
        self.keepalive = keepalive
        self._trim_interval = trim_interval
        self.writer: BatchWriter[Event, tuple[int, list[Event]]] = BatchWriter(
            "events",
            self._append,
            max_pending=max_pending,
            batch=WRITE_BATCH,
            on_written=self._written,
            linger=WRITE_LINGER,
        )
        self._trimmer: asyncio.Task[None] | None = None
        self._latest = 0
        self._changed = asyncio.Event()
        self._oom: dict[str, datetime] = {}  # the last `oom` and `die` seen, by cuid
        self._died: dict[str, datetime] = {}
        self._die_waiters: dict[str, asyncio.Event] = {}
        self.follows = SessionLimiter("event follow", total=follow_max)
        self._ready = False
        self._listeners: list[Callable[[list[Event]], None]] = []
        self._urgent: list[Callable[[Event], bool]] = []

    def add_listener(
        self,
        listener: Callable[[list[Event]], None],
        *,
        urgent: Callable[[Event], bool] | None = None,
    ) -> None:
        """``listener`` sees each batch of events once it is committed (with its seqs);
        it runs on the writer's task, so it must not block or do I/O (webhooks).
        ``urgent(event)`` (no I/O either) says the listener acts on that event at once:
        its batch is then committed without lingering."""
        self._listeners.append(listener)
        if urgent is not None:
            self._urgent.append(urgent)

    def _put(self, event: Event) -> None:
        self.writer.put(event, urgent=any(wants(event) for wants in self._urgent))

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    # -- in: never blocks, never does I/O ---------------------------------------------

    def engine_event(self, event: EngineEvent) -> None:
        """``StateFollower``'s listener."""
        recorded = from_engine(event)
        if recorded is None:
            return
        if recorded.type == "oom":
            self._oom[event.cuid] = recorded.time
        elif recorded.type == "die":
            self._died[event.cuid] = recorded.time
            waiter = self._die_waiters.pop(event.cuid, None)
            if waiter is not None:
                waiter.set()
        elif recorded.type == "destroy":
            self._oom.pop(event.cuid, None)
            self._died.pop(event.cuid, None)
        self._put(recorded)

    def append(self, event: Event) -> None:
        """One of Dockyard's own changes (``domain/recording.py``); never blocks."""
        self._put(event)

    # -- the writer ---------------------------------------------------------------------

    async def start(self) -> None:
        self._latest = max(self._latest, await self._repo.last_seq())
        self._ready = True
        self.writer.start()
        self._trimmer = asyncio.create_task(self._trim_loop(), name="events:trim")

    async def stop(self, deadline: float) -> int:
        """Write what is queued (within ``deadline`` seconds); how many were lost."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        return await self.writer.close(deadline)

    async def _append(self, batch: list[Event]) -> tuple[int, list[Event]]:
        return await self._repo.append(batch), batch

    def _written(self, written: tuple[int, list[Event]]) -> None:
        last, batch = written
        self._latest = max(self._latest, last)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in self._listeners:
            try:
                listener(batch)
            except Exception as exc:  # a listener's bug never stops the journal
                log.error("events.listener_failed", exc_type=type(exc).__name__)

    async def _trim_loop(self) -> None:
        while True:
            try:
                removed = await self._repo.trim(self.max_events)
                if removed:
                    log.info("events.trimmed", removed=removed, kept=self.max_events)
            except Exception as exc:  # next time, then
                log.warning("events.trim_failed", exc_type=type(exc).__name__)
            await asyncio.sleep(self._trim_interval)

    async def flush(self, wait: float = 2.0) -> None:
        """Wait (at most ``wait`` seconds) until what is queued so far is in the store."""
        await self.writer.flush(wait)

    # -- out ------------------------------------------------------------------------------

    async def page(
        self, principal: Principal, flt: EventFilter, *, limit: int, cursor: str | None
    ) -> Page[Event]:
        """Newest first, keyset-paginated."""
        principal.require(Permission.CONTAINERS_READ)
        check_limit(limit, MAX_PAGE)
        start = before(cursor)
        await self.flush()  # a client reads its own actions
        rows = await self._repo.query(
            self._query(principal, flt, limit=limit + 1, oldest_first=False, before_seq=start)
        )
        return page_of(rows, limit)

    async def follow(
        self, principal: Principal, flt: EventFilter, *, after: int | None
    ) -> LeasedStream[Event | None]:
        """New events as they are stored, oldest first; ``None`` now and then while none
        come (a keep-alive). Starts after event ``after`` (a client's Last-Event-ID), at
        ``flt.since`` when given, else with the next new event."""
        principal.require(Permission.CONTAINERS_READ)
        if flt.until is not None:
            raise ValidationError(
                "until cannot be used with follow=true",
                code="INVALID_FIELD",
                details={"field": "until"},
            )
        if after is None:
            if flt.since is not None:
                after = 0
            else:
                after = self._latest if self._ready else await self._repo.last_seq()
        query = self._query(principal, flt, limit=FOLLOW_BATCH, oldest_first=True)
        return LeasedStream(self._follow(query, after), self.follows.acquire())

    async def _follow(self, base: EventQuery, after: int) -> AsyncIterator[Event | None]:
        last = after
        while True:
            changed = self._changed
            latest = self._latest
            base.after_seq = last
            rows = await self._repo.query(base)
            for event in rows:
                last = event.seq
                yield event
            if len(rows) >= base.limit:
                continue
            # Everything up to `latest` was visible to that query: skip what did not match.
            last = max(last, latest)
            if self._latest > last:
                continue
            try:  # asyncio.timeout: wait_for on 3.11 can lose a cancel (timers.py)
                async with asyncio.timeout(self.keepalive):
                    await changed.wait()
            except TimeoutError:
                yield None

    def _query(
        self,
        principal: Principal,
        flt: EventFilter,
        *,
        limit: int,
        oldest_first: bool,
        before_seq: int | None = None,
    ) -> EventQuery:
        return EventQuery(
            owner=None if principal.is_admin else principal.username,
            cuid=flt.cuid,
            types=flt.types,
            since=flt.since,
            until=flt.until,
            before_seq=before_seq,
            limit=limit,
            oldest_first=oldest_first,
        )

    # -- for the status route ------------------------------------------------------------

    async def oom_seen(
        self,
        cuid: str,
        started_at: datetime | None,
        finished_at: datetime | None,
        *,
        wait: float = 1.0,
    ) -> bool:
        """Did the engine report an OOM kill in the container's last run?

        The engine sends ``oom`` before ``die``, but an inspect can see the container
        exited before this process has read either from the event stream. So for a run
        that ended moments ago and whose ``die`` has not arrived yet, wait (at most
        ``wait`` seconds) for it; later, what was seen (or stored) is the answer."""
        if self._oom_in_run(cuid, started_at):
            return True
        died = self._died.get(cuid)
        recent = finished_at is not None and utcnow() - finished_at < RECENT_EXIT
        if recent and (died is None or (started_at is not None and died < started_at)):
            waiter = self._die_waiters.setdefault(cuid, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await waiter.wait()
            return self._oom_in_run(cuid, started_at)
        if cuid in self._died:
            return False  # this run's die was seen, without an oom before it
        # Not seen by this process (it started later): the stored history knows.
        query = EventQuery(cuid=cuid, types=("oom",), since=started_at, limit=1)
        return bool(await self._repo.query(query))

    def _oom_in_run(self, cuid: str, started_at: datetime | None) -> bool:
        seen = self._oom.get(cuid)
        return seen is not None and (started_at is None or seen >= started_at)
