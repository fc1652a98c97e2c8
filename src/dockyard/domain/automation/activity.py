"""Container activity (issue 11): terminal input, exec sessions, uploads, downloads and
check-ins mark a container as used, which puts its idle stop off.

Activity is frequent (every keystroke of a terminal), so a mark is a dict write in
memory; the marks are flushed to the store at most once per ``interval`` per container
(one transaction for all of them). Whoever decides on idleness reads ``last`` first: the
newest mark may not have reached the store yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog

log = structlog.get_logger("dockyard.activity")

FLUSH_INTERVAL = 5.0  # seconds: at most one activity write per container this often


def utcnow() -> datetime:
    return datetime.now(UTC)


class ActivityStore(Protocol):
    async def save_activity(self, marks: dict[str, datetime]) -> None:
        """Write each container's ``last_activity_at`` (unknown cuids are skipped)."""
        ...


class ActivitySink(Protocol):
    def touch(self, cuid: str) -> None: ...

    def last(self, cuid: str) -> datetime | None: ...

    def forget(self, cuid: str) -> None: ...


class NoActivity:
    """Keeps nothing (services built alone, in unit tests)."""

    def touch(self, cuid: str) -> None:
        return None

    def last(self, cuid: str) -> datetime | None:
        return None

    def forget(self, cuid: str) -> None:
        return None


class ActivityTracker:
    """Coalesces activity marks in memory and flushes them periodically."""

    def __init__(
        self,
        store: ActivityStore,
        *,
        interval: float = FLUSH_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._latest: dict[str, datetime] = {}
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def touch(self, cuid: str) -> None:
        """Never blocks, never does I/O."""
        self._latest[cuid] = self._clock()
        self._dirty.add(cuid)

    def last(self, cuid: str) -> datetime | None:
        return self._latest.get(cuid)

    def forget(self, cuid: str) -> None:
        self._latest.pop(cuid, None)
        self._dirty.discard(cuid)

    @property
    def pending(self) -> int:
        return len(self._dirty)

    async def flush(self) -> int:
        """Write the marks made since the last flush; a failed write keeps them for the
        next one. Returns how many were written."""
        if not self._dirty:
            return 0
        marks = {cuid: self._latest[cuid] for cuid in self._dirty if cuid in self._latest}
        self._dirty.clear()
        try:
            await self._store.save_activity(marks)
        except Exception:
            self._dirty.update(marks)
            raise
        return len(marks)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:  # the store is down: next time
                log.warning("activity.flush_failed", exc_type=type(exc).__name__)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="activity-flush")

    async def stop(self) -> None:
        """Stop the periodic flush, then write what is left."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("activity.flush_failed", exc_type=type(exc).__name__, lost=self.pending)
