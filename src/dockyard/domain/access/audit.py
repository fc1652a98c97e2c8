"""The audit trail: every accepted change, appended to the store, readable by admins.

The request middleware hands each authenticated non-GET request to the trail (no I/O: a
bounded queue); one ``BatchWriter`` appends what is queued in batches and drains it when
the service stops. Reads never touch it. ``GET /audit`` first waits for the queue to
drain, so a client reads its own changes.

An accepted change (a 2xx) goes through ``commit`` instead: its answer waits until the
batch holding its entry is committed, so a SIGKILL cannot lose the entry of a change the
client was told about (issue 9). Concurrent changes share one commit (group commit). The
wait is bounded: a store that stays busy or full is logged, and the answer still leaves
(the change is made; docs/reliability.md). Refusals and failures stay fire-and-forget.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.batching import BatchWriter
from dockyard.domain.models import utcnow
from dockyard.domain.paging import Page, before, check_limit, page_of

MAX_PENDING = 100_000
BATCH = 500
MAX_PAGE = 500
COMMIT_WAIT = 10.0  # seconds an answer waits for its entry at most (the busy timeout)


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
    def __init__(
        self,
        repo: AuditRepository,
        *,
        max_pending: int = MAX_PENDING,
        commit_wait: float = COMMIT_WAIT,
    ) -> None:
        self._repo = repo
        self._commit_wait = commit_wait
        self.writer: BatchWriter[AuditEntry, None] = BatchWriter(
            "audit", repo.append, max_pending=max_pending, batch=BATCH
        )

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    def record(self, entry: AuditEntry) -> None:
        """Queue one entry; never blocks, never does I/O."""
        self.writer.put(entry)

    async def commit(self, entry: AuditEntry) -> bool:
        """Queue one entry and wait until it is in the store: True when it is, False when
        it was lost or is not there within the bound (the caller logs and goes on)."""
        written = self.writer.put_waiting(entry)
        if written.done():
            return written.result()
        try:
            async with asyncio.timeout(self._commit_wait):
                return await written
        except TimeoutError:
            return False

    def start(self) -> None:
        self.writer.start()

    async def stop(self, deadline: float) -> int:
        """Write what is queued (within ``deadline`` seconds); how many were lost."""
        return await self.writer.close(deadline)

    async def flush(self, wait: float = 10.0) -> None:
        """Wait until everything queued so far is in the store."""
        await self.writer.flush(wait)

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
