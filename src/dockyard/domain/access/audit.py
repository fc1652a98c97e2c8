"""The audit trail: every accepted change, appended to the store, readable by admins.

The request middleware hands each authenticated non-GET request to ``AuditTrail.record``
(no I/O: a bounded queue); one ``BatchWriter`` appends what is queued in batches and
drains it when the service stops. Reads never touch it. ``GET /audit`` first waits for
the queue to drain, so a client reads its own changes.
"""

from __future__ import annotations

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
        self.writer: BatchWriter[AuditEntry, None] = BatchWriter(
            "audit", repo.append, max_pending=max_pending, batch=BATCH
        )

    @property
    def dropped(self) -> int:
        return self.writer.dropped

    def record(self, entry: AuditEntry) -> None:
        """Queue one entry; never blocks, never does I/O."""
        self.writer.put(entry)

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
