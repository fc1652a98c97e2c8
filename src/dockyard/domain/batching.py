"""One writer for append-only journals (the audit trail, the events).

Producers call ``put`` on the request path: no I/O, never blocks; a full queue drops
and counts. One task appends what is queued in batches, each batch in one transaction
(``append``), retrying with backoff while the store is unavailable. Stopping drains
(uvicorn's order, docs/architecture.md): ``close(deadline)`` stops accepting, waits
for the queue to empty, and only then (or at the deadline) stops the task. A write in
progress is never cancelled: a cancelled transaction would keep SQLite's write lock
while the last writes queue behind it (issue 8: events lost, stop stalled ~30 s).

Group commit (issue 9): ``put_waiting`` queues like ``put`` and hands back a future that
is resolved when the batch holding the item is committed (True) or lost (False). The
writer takes whatever is queued as soon as its last write ends, so concurrent waiters
share one commit and nobody waits for a timer. Closing resolves every waiter left.

``linger``: a journal nobody waits on (the events) may hold its first item that long
before writing, gathering more; a waiter, a full batch, an urgent item (``put(...,
urgent=True)``: someone acts on it as soon as it is committed, e.g. a webhook wants the
event) or closing ends the linger at once. It keeps such a journal's commit out of the way
of a request's own durable audit commit (both take the database's one write lock), and
costs its readers that much delay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger("dockyard.journal")

T = TypeVar("T")
R = TypeVar("R")

BATCH = 500
RETRIES = 5
BACKOFF = 0.2  # seconds, doubled each retry


class BatchWriter(Generic[T, R]):
    """Appends queued items in batches through ``append``; ``on_written`` sees what
    ``append`` returned for each batch written."""

    def __init__(
        self,
        name: str,
        append: Callable[[list[T]], Awaitable[R]],
        *,
        max_pending: int,
        batch: int = BATCH,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        on_written: Callable[[R], None] | None = None,
        linger: float = 0.0,
    ) -> None:
        self.name = name
        self._linger = linger
        self._hurry = False  # an urgent item is queued: no lingering for its batch
        self._append = append
        self._on_written = on_written
        self._batch = batch
        self._retries = retries
        self._backoff = backoff
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=max_pending)
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.dropped = 0
        # Items are written in the order they were queued: the n-th accepted item is in
        # the batch that brings ``_settled`` to n. Waiters are kept in that order too.
        self._accepted = 0
        self._settled = 0
        self._waiters: deque[tuple[int, asyncio.Future[bool]]] = deque()

    @property
    def pending(self) -> int:
        """Items queued or being written."""
        return self._queue.qsize() + self._in_flight

    def put(self, item: T, *, urgent: bool = False) -> bool:
        """Queue one item; False (and counted) when it was dropped. ``urgent`` ends the
        linger: the batch holding it is written at once."""
        if self._closing:
            self._drop(1, "closed")
            return False
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop(1, "full")
            return False
        self._accepted += 1
        if self._linger and (urgent or self._queue.qsize() >= self._batch):
            self._hurry = self._hurry or urgent
            self._wake.set()
        return True

    def put_waiting(self, item: T) -> asyncio.Future[bool]:
        """Queue one item; the future says whether the batch holding it was committed
        (False at once when the item was dropped, or when no task writes now)."""
        done = asyncio.get_running_loop().create_future()
        if not self.put(item) or self._task is None or self._task.done():
            done.set_result(False)
        else:
            self._waiters.append((self._accepted, done))
            self._wake.set()  # no lingering: someone waits
        return done

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"journal:{self.name}")

    async def _run(self) -> None:
        while True:
            if self._queue.empty():
                if self._closing:
                    return
                self._wake.clear()
                getter = asyncio.ensure_future(self._queue.get())
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
                    if not getter.done():
                        getter.cancel()
                if not getter.done() or getter.cancelled():
                    continue  # woken to close
                batch = [getter.result()]
            else:
                batch = [self._queue.get_nowait()]
            self._in_flight = len(batch)  # taken: a flush must see it, and end the linger
            await self._linger_a_little()
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._hurry = False  # an urgent item queued so far is in this batch
            self._in_flight = len(batch)
            try:
                # Shielded: stopping the writer never cuts a transaction in half.
                written = await asyncio.shield(self._write(batch))
            finally:
                self._in_flight = 0
                for _ in batch:
                    self._queue.task_done()
            self._settled += len(batch)
            self._resolve(written, upto=self._settled)

    async def _linger_a_little(self) -> None:
        if not self._linger or self._closing or self._waiters or self._hurry:
            return
        self._wake.clear()  # set again by a waiter, a full batch or close
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger):
                await self._wake.wait()

    def _resolve(self, written: bool, *, upto: int | None = None) -> None:
        """Tell the waiters of the items up to ``upto`` (all when None) their outcome."""
        waiters = self._waiters
        while waiters and (upto is None or waiters[0][0] <= upto):
            _, done = waiters.popleft()
            if not done.done():  # its waiter may have given up (cancelled it)
                done.set_result(written)

    async def _write(self, batch: list[T]) -> bool:
        for attempt in range(self._retries):
            try:
                result = await self._append(batch)
            except Exception as exc:  # the store is unavailable: back off and retry
                log.error(
                    "journal.write_failed",
                    journal=self.name,
                    attempt=attempt,
                    exc_type=type(exc).__name__,
                )
                if attempt + 1 < self._retries:
                    await asyncio.sleep(self._backoff * 2**attempt)
                continue
            if self._on_written is not None:
                self._on_written(result)
            return True
        self._drop(len(batch), "write_failed")
        return False

    async def flush(self, wait: float) -> bool:
        """Wait (at most ``wait`` seconds) until everything queued so far is written;
        True when it was."""
        if self.pending == 0:
            return True
        self._wake.set()  # no lingering: someone waits
        try:
            async with asyncio.timeout(wait):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, deadline: float) -> int:
        """Stop accepting, write what is queued within ``deadline`` seconds, then stop.
        Returns how many items were dropped in all (logged when any were)."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=deadline)
            if not done:
                left = self.pending
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._drop(left, "deadline")
        elif not self._queue.empty():
            self._drop(self._queue.qsize(), "never_started")
        self._resolve(False)  # what is still waited for was not written: nobody hangs
        if self.dropped:
            log.warning("journal.closed_with_losses", journal=self.name, dropped=self.dropped)
        return self.dropped

    def _drop(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        self.dropped += count
        log.error(
            "journal.dropped", journal=self.name, count=count, reason=reason, total=self.dropped
        )
