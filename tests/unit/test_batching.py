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


# -- group commit (issue 9): a waiter learns when the batch holding its item is committed


async def test_waiters_queued_during_a_write_share_the_next_commit() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=100)
    writer.start()
    first = writer.put_waiting(0)
    await store.entered.wait()  # the first batch is being written, and held there
    later = [writer.put_waiting(i) for i in range(1, 6)]
    assert not first.done() and not any(w.done() for w in later)
    store.gate.set()
    assert await first is True
    assert await asyncio.gather(*later) == [True] * 5
    assert store.batches == [[0], [1, 2, 3, 4, 5]]  # two commits for six waiters
    assert await writer.close(1) == 0


async def test_a_waiter_hears_the_commit_of_its_own_batch_not_an_earlier_one() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=100, batch=2)
    writer.start()
    writer.put(0)
    await store.entered.wait()
    writer.put(1)
    writer.put(2)
    mine = writer.put_waiting(3)  # in the third batch: [0], [1, 2], [3]
    store.gate.set()
    assert await mine is True
    assert store.written == [0, 1, 2, 3]
    assert len(store.batches) == 3
    assert await writer.close(1) == 0


async def test_a_lost_batch_tells_its_waiters() -> None:
    store = SlowStore()
    store.failures = 10
    store.gate.set()
    writer = BatchWriter("t", store.append, max_pending=10, retries=2, backoff=0.001)
    writer.start()
    assert await writer.put_waiting(1) is False
    store.failures = 0
    assert await writer.put_waiting(2) is True
    assert store.written == [2]
    assert await writer.close(1) == 1


async def test_no_waiter_hangs_when_the_writer_stops_or_never_ran() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=10)
    assert await writer.put_waiting(0) is False  # not started: nothing would write it
    writer.start()
    held = writer.put_waiting(1)
    await store.entered.wait()
    queued = writer.put_waiting(2)
    assert await writer.close(deadline=0.05) == 3
    assert await held is False and await queued is False
    assert await writer.put_waiting(3) is False  # closed
    assert not store.cancelled


async def test_a_full_queue_refuses_a_waiter_at_once() -> None:
    store = SlowStore()
    writer = BatchWriter("t", store.append, max_pending=1)
    writer.start()
    writer.put(0)
    await store.entered.wait()
    writer.put(1)  # the queue holds one
    refused = writer.put_waiting(2)
    assert refused.done() and refused.result() is False
    store.gate.set()
    assert await writer.close(1) == 1


def _lingering() -> tuple[BatchWriter[str, None], list[list[str]]]:
    """A started writer that lingers 30 s, and the batches it wrote."""
    batches: list[list[str]] = []

    async def append(items: list[str]) -> None:
        batches.append(list(items))

    writer: BatchWriter[str, None] = BatchWriter("t", append, max_pending=10, linger=30.0)
    writer.start()
    return writer, batches


async def _put_and_let_it_linger(writer: BatchWriter[str, None], item: str) -> None:
    writer.put(item)
    for _ in range(5):
        await asyncio.sleep(0)  # the writer takes the item and lingers


async def test_a_lingering_journal_commits_with_the_first_waiter_and_at_close() -> None:
    """linger (the events): the first item waits for company; a waiter (the audit of a
    request) or closing ends the wait at once, and both go in one commit."""
    writer, batches = _lingering()
    await _put_and_let_it_linger(writer, "event")
    assert batches == []
    assert await asyncio.wait_for(writer.put_waiting("audit"), 5)
    assert batches == [["event", "audit"]]
    writer.put("late")
    assert await asyncio.wait_for(writer.close(5), 5) == 0
    assert batches[-1] == ["late"]


async def test_a_flush_ends_the_linger() -> None:
    """A reader that flushes first (GET /events) sees the change it just made."""
    writer, batches = _lingering()
    await _put_and_let_it_linger(writer, "event")
    assert await asyncio.wait_for(writer.flush(5), 5)
    assert batches == [["event"]]
    await writer.close(1)


async def _written(batches: list[list[str]], count: int) -> None:
    while len(batches) < count:
        await asyncio.sleep(0.001)


async def test_an_urgent_item_is_committed_without_lingering() -> None:
    """An event a webhook wants: its batch is written at once, whether it arrives while
    the writer lingers over another item or first (the writer does not linger at all)."""
    writer, batches = _lingering()
    await _put_and_let_it_linger(writer, "quiet")
    writer.put("wanted", urgent=True)
    await asyncio.wait_for(_written(batches, 1), 5)
    assert batches == [["quiet", "wanted"]]
    writer.put("wanted again", urgent=True)
    await asyncio.wait_for(_written(batches, 2), 5)
    assert batches[-1] == ["wanted again"]
    await _put_and_let_it_linger(writer, "quiet again")  # urgency does not stick
    assert len(batches) == 2
    await writer.close(1)
