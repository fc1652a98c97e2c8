"""The audit trail: every accepted change, appended to the store, readable by admins.

The request middleware hands each authenticated non-GET request to ``AuditTrail.record``
(no I/O: a bounded queue); one background task appends what is queued in batches. Reads
never touch it. ``GET /audit`` first waits for the queue to drain, so a client reads its
own changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog
from pydantic import BaseModel, Field

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.models import utcnow
from dockyard.domain.paging import Page, before, check_limit, page_of

log = structlog.get_logger("dockyard.audit")

MAX_PENDING = 100_000
BATCH = 500
MAX_PAGE = 500


class AuditEntry(BaseModel):
    seq: int = 0
    at: datetime = Field(default_factory=utcnow)
    username: str
    credential: str = "basic"  # basic | key:<id> | token:<id> | ticket
    method: str
    route: str  # the route's template, e.g. /containers/{cuid}/start
    action: str  # the endpoint's name, e.g. start_container
    resource: str | None = None  # a cuid, an account, a key id, a role name
    request_id: str | None = None
    status: int
    source: str | None = None


@dataclass
class AuditQuery:
    username: str | None = None
    action: str | None = None
    resource: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    before_seq: int | None = None


class AuditRepository(Protocol):
    async def append(self, entries: list[AuditEntry]) -> None: ...
    async def query(self, query: AuditQuery) -> list[AuditEntry]: ...


class AuditTrail:
    def __init__(self, repo: AuditRepository, *, max_pending: int = MAX_PENDING) -> None:
        self._repo = repo
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(maxsize=max_pending)
        self._unwritten = 0  # queued or being written
        self.dropped = 0

    def record(self, entry: AuditEntry) -> None:
        """Queue one entry; never blocks, never does I/O."""
        try:
            self._queue.put_nowait(entry)
            self._unwritten += 1
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("audit.dropped", request_id=entry.request_id, dropped=self.dropped)

    async def _write(self, batch: list[AuditEntry]) -> None:
        for attempt in range(5):
            try:
                await self._repo.append(batch)
                return
            except Exception as exc:  # the store is down: retry a little, then report
                log.error("audit.write_failed", attempt=attempt, exc_type=type(exc).__name__)
                await asyncio.sleep(0.2 * 2**attempt)
        self.dropped += len(batch)

    async def run(self) -> None:
        """Append queued entries until cancelled."""
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
                self._unwritten -= len(batch)

    async def flush(self, wait: float = 10.0) -> None:
        """Wait until everything queued so far is in the store."""
        if self._unwritten == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), wait)

    async def drain(self) -> None:
        """Write what is left (at shutdown, after the writer task stopped)."""
        batch: list[AuditEntry] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
            self._queue.task_done()
            self._unwritten -= 1
            if len(batch) >= BATCH:
                await self._write(batch)
                batch = []
        if batch:
            await self._write(batch)

    async def page(
        self,
        principal: Principal,
        *,
        username: str | None,
        action: str | None,
        resource: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEntry]:
        principal.require(Permission.AUDIT_READ)
        check_limit(limit, MAX_PAGE)
        start = before(cursor)
        await self.flush()
        rows = await self._repo.query(
            AuditQuery(
                username=username,
                action=action,
                resource=resource,
                since=since,
                until=until,
                limit=limit + 1,
                before_seq=start,
            )
        )
        return page_of(rows, limit)
