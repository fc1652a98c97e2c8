"""Keep the database (what was asked) and Docker (what runs) in agreement (SPEC §1, §9).

``Reconciler.run_once`` runs at start-up and periodically; ``StateFollower`` applies
engine events as they come, so that a status read from the store is current.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from dockyard.domain.containers.automatic import ENDED
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.models import ContainerRecord, ContainerSpec, Status
from dockyard.domain.ports import (
    AccountRepository,
    ContainerRepository,
    EngineEvent,
    ManagedContainer,
)
from dockyard.domain.recording import SYSTEM, Change, NullRecorder, Recorder
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.reconcile")

ADOPTED = (
    "adopted: found on the engine without a record, so only its image is known; its next"
    " start or change recreates it from this record (set command, env and ports first)"
)


class ManagedLister(Protocol):
    """What the reconcile asks of an engine (an ``Engine``, or one engine's feed)."""

    async def list_managed(self) -> list[ManagedContainer]: ...


class EventSource(Protocol):
    """What the follower asks of an engine."""

    def stream_events(self) -> AsyncIterator[EngineEvent]: ...


@dataclass
class ReconcileReport:
    missing: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        repo: ContainerRepository,
        accounts: AccountRepository,
        engine: ManagedLister,
        containers: ContainerService,
        recorder: Recorder | None = None,
        *,
        engine_id: str = LOCAL,
    ) -> None:
        """``engine_id``: the engine whose records this reconcile keeps (each engine has
        its own; only the local one adopts containers without a record)."""
        self._repo = repo
        self._accounts = accounts
        self._recorder: Recorder = recorder or NullRecorder()
        self._engine = engine
        self._containers = containers
        self.last_report = ReconcileReport()
        self.engine_id = engine_id

    async def run_once(self, *, startup: bool) -> ReconcileReport:
        """At start-up, interrupted creates and deletes are finished too; later they
        may be in progress in this very process, so they are left alone."""
        report = ReconcileReport()
        # Replicas 2..N of a scaled container carry its cuid too: the container is its
        # first replica, and the others are neither unknown nor adopted on their own.
        listed = sorted(await self._engine.list_managed(), key=lambda m: m.replica == 1)
        managed = {m.cuid: m for m in listed}  # replica 1 last: it wins
        # This engine's records only: another engine's containers are not in its list.
        records = [r for r in await self._repo.all() if r.engine == self.engine_id]
        if startup:
            await self._claim_ports(records)
        for record in records:
            if record.status is Status.CREATING:
                if startup:
                    await self._finish_create(record, report)
                continue
            if record.status is Status.REMOVING:
                # Only our own delete (or a failed create's clean-up) writes it; not in
                # progress here: finish it.
                if startup or not self._containers.busy(record.cuid):
                    await self._finish_delete(record, report)
                continue
            seen = managed.get(record.cuid)
            if seen is None:
                if record.status not in (Status.MISSING, Status.FAILED):
                    record.status = Status.MISSING
                    await self._repo.save_state(record)
                    report.missing.append(record.cuid)
                    self._record("container.missing", record)
            elif seen.status is not record.status:
                await self._containers.refresh(record)
                report.updated.append(record.cuid)
            if record.spec.auto_remove and record.status is not Status.FAILED:
                await self._auto_remove(record, report, startup=startup)
        known = {record.cuid for record in records}
        for cuid, seen in managed.items():
            if cuid in known:
                continue
            if self.engine_id != LOCAL or seen.project_dir != str(
                self._containers.project_dir(cuid)
            ):
                # Another Dockyard (another DATA_DIR) on the same engine: not ours to adopt.
                continue
            owner = seen.labels.get("dockyard.owner", "")
            if owner and await self._accounts.get(owner) is not None and seen.image:
                await self._adopt(cuid, owner, seen.status, seen.image, report)
            else:
                report.orphans.append(cuid)
        for name in ("missing", "adopted", "orphans", "completed", "failed", "removed"):
            items = getattr(report, name)
            if items:
                log.warning(f"reconcile.{name}", cuids=items)
        self.last_report = report
        return report

    async def _claim_ports(self, records: list[ContainerRecord]) -> None:
        """Host ports of records older than the allocation table get their claims."""
        for record in records:
            if record.status is Status.FAILED or not any(p.host for p in record.spec.ports):
                continue
            ports = self._containers.ports
            clashes = await ports.backfill(record.cuid, record.engine, record.spec.ports)
            if clashes:
                log.warning("reconcile.port_clash", cuid=record.cuid, ports=clashes)

    async def _finish_delete(self, record: ContainerRecord, report: ReconcileReport) -> None:
        """A ``down`` the engine cannot do yet is tried again next round (one record's
        trouble never stops the others)."""
        try:
            await self._containers.finish_delete(record.cuid)
        except DockyardError as exc:
            log.warning("reconcile.delete_deferred", cuid=record.cuid, error=exc.code)
            return
        report.removed.append(record.cuid)

    async def _auto_remove(
        self, record: ContainerRecord, report: ReconcileReport, *, startup: bool
    ) -> None:
        """An auto_remove container that ended while nobody watched (Dockyard was down)
        is removed at start-up; later, and while it runs, the timers see to it (its die
        is watched for after a restart too)."""
        timers = self._containers.timers
        if record.status not in ENDED or (timers is not None and not startup):
            if timers is not None:
                timers.watch(record)  # an ended one is removed after REMOVE_AFTER
            return
        try:
            removed = await self._containers.auto_remove(record)
        except DockyardError as exc:
            log.warning("reconcile.auto_remove_deferred", cuid=record.cuid, error=exc.code)
            return
        if removed:
            report.removed.append(record.cuid)

    async def _adopt(
        self, cuid: str, owner: str, status: Status, image: str, report: ReconcileReport
    ) -> None:
        """A labelled container of ours without a record gets one, and its folder and
        compose file back, so that every action on it works (SPEC §9); what Dockyard
        cannot know of it (command, env, ports) the record's ``error`` says."""
        adopted = ContainerRecord(
            cuid=cuid, owner=owner, status=status, spec=ContainerSpec(image=image), error=ADOPTED
        )
        await self._repo.insert(adopted)
        try:
            await self._containers.restore_project(adopted)
        except (DockyardError, OSError) as exc:
            log.warning("reconcile.restore_failed", cuid=cuid, error=type(exc).__name__)
        report.adopted.append(cuid)
        self._record("container.adopted", adopted)

    async def _finish_create(self, record: ContainerRecord, report: ReconcileReport) -> None:
        try:
            await self._containers.complete_create(record, start=False)
            report.completed.append(record.cuid)
        except (DockyardError, OSError) as exc:
            record.status = Status.FAILED
            record.error = f"interrupted create could not be completed: {exc}"
            await self._repo.save(record)
            await self._containers.ports.release(record.cuid)  # a failed one holds none
            report.failed.append(record.cuid)
            self._record("container.failed", record)

    def _record(self, action: str, record: ContainerRecord) -> None:
        self._recorder.record(
            Change(action, record.cuid, record.owner, SYSTEM, component="reconcile")
        )

    async def run_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once(startup=False)
            except DockyardError as exc:
                log.warning("reconcile.failed", error=exc.code)


class StateFollower:
    """Applies the engine's container events to the store as they arrive.

    ``listeners`` see each event first (events history, metrics); they must return at
    once (queue, don't write), so that statuses keep following the engine promptly."""

    def __init__(
        self,
        repo: ContainerRepository,
        engine: EventSource,
        containers: ContainerService,
        listeners: Sequence[Callable[[EngineEvent], None]] = (),
        *,
        engine_id: str = LOCAL,
        on_connected: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``engine_id``: the engine followed (only the local one's stream makes the
        store's statuses current for reads: ``events_live``); ``on_connected`` runs each
        time the stream (re)connects (another engine's reconcile catches up)."""
        self._repo = repo
        self._engine = engine
        self._containers = containers
        self._listeners = tuple(listeners)
        self._local = engine_id == LOCAL
        self._on_connected = on_connected

    async def run_forever(self) -> None:
        backoff = 0.5
        while True:
            try:
                async for event in self._engine.stream_events():
                    backoff = 0.5
                    if not event.cuid:  # the stream is connected
                        if self._local:
                            self._containers.events_live = True
                        if self._on_connected is not None:
                            await self._on_connected()
                        continue
                    if event.action.startswith(("exec_", "attach", "resize", "top")):
                        continue
                    for listener in self._listeners:
                        try:
                            listener(event)
                        except Exception as exc:  # a listener's bug must not stop statuses
                            log.error("events.listener_failed", exc_type=type(exc).__name__)
                    if self._containers.busy(event.cuid):
                        continue  # an operation is under way; it reads the state when done
                    record = await self._repo.get(event.cuid)
                    if record is not None:
                        with suppress(DockyardError):
                            await self._containers.refresh(record)
            except DockyardError as exc:
                log.warning("events.disconnected", error=exc.code)
            if self._local:
                self._containers.events_live = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)
