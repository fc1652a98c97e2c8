"""The timers' scheduler with a fake clock, and activity coalescing (issue 11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dockyard.domain.automation.activity import ActivityTracker
from dockyard.domain.automation.timers import Timer, TimerScheduler
from dockyard.domain.models import ContainerRecord, ContainerSpec, Status
from dockyard.domain.ports import EngineEvent

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeContainers:
    """The records and what the scheduler did to them."""

    def __init__(self) -> None:
        self.records: dict[str, ContainerRecord] = {}
        self.done: list[tuple[str, str]] = []

    def add(self, cuid: str, **fields: object) -> ContainerRecord:
        values: dict[str, object] = {"status": Status.RUNNING, "created_at": T0, **fields}
        record = ContainerRecord(cuid=cuid, owner="ann", spec=ContainerSpec(image="x"), **values)  # type: ignore[arg-type]
        self.records[cuid] = record
        return record

    async def timed(self) -> list[ContainerRecord]:
        return [r for r in self.records.values() if r.idle_timeout is not None or r.expires_at]

    async def lookup(self, cuid: str) -> ContainerRecord | None:
        record = self.records.get(cuid)
        return record.model_copy() if record else None

    async def idle_stop(self, record: ContainerRecord) -> None:
        self.done.append(("idle_stopped", record.cuid))
        self.records[record.cuid].status = Status.EXITED

    async def expire(self, record: ContainerRecord) -> None:
        self.done.append(("expired", record.cuid))
        del self.records[record.cuid]


class Store:
    def __init__(self) -> None:
        self.writes: list[dict[str, datetime]] = []

    async def save_activity(self, marks: dict[str, datetime]) -> None:
        self.writes.append(dict(marks))


def _world() -> tuple[Clock, FakeContainers, ActivityTracker, TimerScheduler]:
    clock = Clock()
    containers = FakeContainers()
    activity = ActivityTracker(Store(), clock=clock)
    return clock, containers, activity, TimerScheduler(containers, activity, clock=clock)


async def _fire(scheduler: TimerScheduler) -> None:
    await asyncio.gather(*scheduler.fire_due())


async def test_timers_fire_in_due_order_and_not_before() -> None:
    clock, containers, _, scheduler = _world()
    for cuid, fields in (
        ("c-late", {"expires_at": T0 + timedelta(seconds=30)}),
        ("c-idle", {"idle_timeout": 10.0}),
        ("c-soon", {"expires_at": T0 + timedelta(seconds=5)}),
    ):
        scheduler.watch(containers.add(cuid, **fields))
    assert scheduler.next_due() == T0 + timedelta(seconds=5)
    await _fire(scheduler)
    assert containers.done == []
    clock.advance(5)
    await _fire(scheduler)
    clock.advance(5)
    await _fire(scheduler)
    clock.advance(20)
    await _fire(scheduler)
    assert containers.done == [
        ("expired", "c-soon"),
        ("idle_stopped", "c-idle"),
        ("expired", "c-late"),
    ]
    assert scheduler.next_due() is None


async def test_activity_puts_the_idle_stop_off() -> None:
    clock, containers, activity, scheduler = _world()
    scheduler.watch(containers.add("c-1", idle_timeout=10.0))
    clock.advance(8)
    activity.touch("c-1")  # in memory only: the scheduler reads it when the timer fires
    clock.advance(2)
    await _fire(scheduler)
    assert containers.done == []
    assert scheduler.due_at("c-1", Timer.IDLE) == T0 + timedelta(seconds=18)
    clock.advance(8)
    await _fire(scheduler)
    assert containers.done == [("idle_stopped", "c-1")]


async def test_a_patch_reschedules_and_a_delete_removes() -> None:
    clock, containers, _, scheduler = _world()
    record = containers.add("c-1", idle_timeout=10.0, expires_at=T0 + timedelta(seconds=5))
    scheduler.watch(record)
    record.idle_timeout = 60.0  # PATCH: a longer timeout, no expiry
    record.expires_at = None
    scheduler.watch(record)
    assert scheduler.next_due() == T0 + timedelta(seconds=60)
    clock.advance(30)
    await _fire(scheduler)
    assert containers.done == []
    scheduler.watch(containers.add("c-2", expires_at=T0 + timedelta(seconds=40)))
    scheduler.forget("c-2")  # deleted by its owner
    scheduler.forget("c-1")
    clock.advance(100)
    await _fire(scheduler)
    assert containers.done == []
    assert len(scheduler) == 0


async def test_overdue_timers_fire_at_start_up() -> None:
    clock, containers, _, scheduler = _world()
    containers.add("c-idle", idle_timeout=10.0)
    containers.add("c-old", expires_at=T0 + timedelta(seconds=1))
    containers.add("c-new", expires_at=T0 + timedelta(hours=1))
    containers.add("c-none")
    clock.advance(3600 - 1)  # Dockyard was down meanwhile
    assert await scheduler.load() == 3
    await _fire(scheduler)
    assert sorted(containers.done) == [("expired", "c-old"), ("idle_stopped", "c-idle")]


async def test_a_stopped_container_is_left_alone_until_it_starts_again() -> None:
    clock, containers, _, scheduler = _world()
    scheduler.watch(containers.add("c-1", idle_timeout=10.0, status=Status.EXITED))
    clock.advance(20)
    await _fire(scheduler)
    assert containers.done == [] and scheduler.next_due() is None
    containers.records["c-1"].status = Status.RUNNING
    containers.records["c-1"].started_at = clock.now
    scheduler.engine_event(EngineEvent(cuid="c-1", action="start"))
    await _fire(scheduler)
    assert scheduler.due_at("c-1", Timer.IDLE) == clock.now + timedelta(seconds=10)
    clock.advance(10)
    await _fire(scheduler)
    assert containers.done == [("idle_stopped", "c-1")]


async def test_the_task_sleeps_until_the_next_due_time_and_wakes_on_changes() -> None:
    clock, containers, _, scheduler = _world()
    clock.now = datetime.now(UTC)  # the task's sleep is real time
    await scheduler.start()
    try:
        record = containers.add("c-1", created_at=clock.now, expires_at=clock.now)
        scheduler.watch(record)  # due now: wakes the sleeping task
        async with asyncio.timeout(5):
            while not containers.done:
                await asyncio.sleep(0.01)
        assert containers.done == [("expired", "c-1")]
    finally:
        await scheduler.stop()


async def test_ten_thousand_quiet_timers_are_one_heap_and_one_task() -> None:
    _, containers, _, scheduler = _world()
    for i in range(10_000):
        scheduler.watch(containers.add(f"c-{i}", idle_timeout=3600.0 + i))
    assert len(scheduler) == 10_000
    assert scheduler.fire_due() == []  # nothing due: nothing looked at
    assert scheduler.next_due() == T0 + timedelta(seconds=3600)


async def test_activity_is_written_at_most_once_per_flush() -> None:
    clock = Clock()
    store = Store()
    activity = ActivityTracker(store, clock=clock)
    for _ in range(1000):
        activity.touch("c-1")
        clock.advance(0.001)
    activity.touch("c-2")
    assert await activity.flush() == 2
    assert len(store.writes) == 1
    assert store.writes[0]["c-1"] == activity.last("c-1")
    assert await activity.flush() == 0  # nothing new: no write
    assert len(store.writes) == 1
