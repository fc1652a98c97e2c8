"""The one writer behind the audit trail and the events (domain/batching.py)."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.domain.batching import BatchWriter


class SlowStore:
    """Appends only when let through; records every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.cancelled = False
        self.failures = 0

    async def append(self, batch: list[int]) -> int:
        self.entered.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.batches.append(list(batch))
        return batch[-1]

    @property
    def written(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


async def test_close_drains_everything_queued_without_cutting_a_write() -> None:
    store = SlowStore()
    seen: list[int] = []
    writer = BatchWriter("t", store.append, max_pending=10_000, batch=100, on_written=seen.append)
    writer.start()
    writer.put(0)
    await store.entered.wait()  # the first batch is being written, and held there
    for item in range(1, 1000):
        assert writer.put(item)
    closing = asyncio.create_task(writer.close(deadline=10))
    await asyncio.sleep(0)
    assert not writer.put(5000)  # no longer accepting
    store.gate.set()
    assert await closing == 1  # the refused one, nothing else
    assert store.written == list(range(1000))
    assert not store.cancelled
    assert seen[-1] == 999
    assert [len(b) for b in store.batches][:2] == [1, 100]


async def test_deadline_cancels_and_counts_what_was_lost() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=100, batch=10)
    writer.start()
    for item in range(25):
        writer.put(item)
    await store.entered.wait()
    assert await writer.close(deadline=0.05) == 25
    assert store.written == []


async def test_full_queue_drops_and_counts() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=3)
    assert [writer.put(i) for i in range(5)] == [True, True, True, False, False]
    assert writer.dropped == 2
    store.gate.set()
    writer.start()
    assert await writer.flush(5)
    assert store.written == [0, 1, 2]
    assert await writer.close(1) == 2


async def test_a_failing_store_is_retried_then_written() -> None:
    store = SlowStore()
    store.failures = 2
    store.gate.set()
    writer = BatchWriter("t", store.append, max_pending=10, backoff=0.001)
    writer.start()
    writer.put(1)
    assert await writer.flush(5)
    assert store.written == [1]
    assert await writer.close(1) == 0


@pytest.mark.parametrize("retries", [1, 3])
async def test_a_store_that_stays_down_loses_the_batch_visibly(retries: int) -> None:
    store = SlowStore()
    store.failures = 10
    store.gate.set()
    writer = BatchWriter("t", store.append, max_pending=10, retries=retries, backoff=0.001)
    writer.start()
    writer.put(1)
    writer.put(2)
    assert await writer.flush(5)
    assert store.written == []
    assert await writer.close(1) == 2
