"""The container lifecycle: create, read, update, control, delete (SPEC §4).

Changes of state go through Compose (``ComposeRunner``); reads come from the store
and the Engine API (``Engine``) and never shell out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.containers.compose_doc import Placement, compose_document
from dockyard.domain.containers.lifecycle import Action, Plan, plan, require_usable
from dockyard.domain.containers.policy import check_document
from dockyard.domain.containers.quotas import NoQuotas, QuotaGuard
from dockyard.domain.containers.specs import check_host_ports, patched
from dockyard.domain.models import (
    CUID,
    ContainerRecord,
    ContainerSpec,
    LiveState,
    Port,
    Resources,
    Status,
    new_cuid,
)
from dockyard.domain.paging import Page, before, check_limit, page_of
from dockyard.domain.ports import ComposeRunner, ContainerQuery, ContainerRepository, Engine
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import (
    ConflictError,
    DockyardError,
    ValidationError,
)

log = structlog.get_logger("dockyard.containers")

MAX_PAGE = 500

Provisioner = Callable[[ContainerRecord], Awaitable[None]]


@dataclass(frozen=True)
class ContainerConfig:
    containers_dir: Path
    placement: Placement
    uid: int
    gid: int
    # Limits of a container that asks for none (SPEC §4: never unlimited).
    default_resources: Resources = field(default_factory=Resources)
    # Host ports never published: the engine's, Dockyard's own (below 1024 too).
    reserved_ports: frozenset[int] = frozenset({2375, 2376})
    # Host ports below 1024 may be published (SPEC §4 "host access", settings.host_access).
    host_access: bool = False


class ContainerService:
    """Creates and drives containers on behalf of principals."""

    def __init__(
        self,
        repo: ContainerRepository,
        compose: ComposeRunner,
        engine: Engine,
        config: ContainerConfig,
        heavy_limit: int,
        quotas: QuotaGuard | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._repo = repo
        self._recorder: Recorder = recorder or NullRecorder()
        self._compose = compose
        self._engine = engine
        self._config = config
        self._quotas: QuotaGuard = quotas or NoQuotas()
        self._heavy = asyncio.Semaphore(heavy_limit)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # True while the engine's event stream is followed (StateFollower): statuses in
        # the store are then current, and a read need not ask the engine again.
        self.events_live = False

    # -- paths and documents ---------------------------------------------------

    def project_dir(self, cuid: str) -> Path:
        return self._config.containers_dir / cuid

    def app_dir(self, cuid: str) -> Path:
        return self.project_dir(cuid) / "app"

    def document(self, record: ContainerRecord) -> dict[str, Any]:
        app_dir = self.app_dir(record.cuid)
        doc = compose_document(
            record.cuid,
            record.owner,
            self.with_defaults(record.spec),
            app_dir,
            self._config.placement,
            boot_py=(app_dir / "boot.py").is_file(),
        )
        check_document(doc, app_dir, self._config.placement.network)
        return doc

    @asynccontextmanager
    async def locked(self, cuid: str) -> Any:
        async with self._locks[cuid]:
            yield

    # -- reads -----------------------------------------------------------------

    async def owned(self, principal: Principal, cuid: str) -> ContainerRecord:
        if not CUID.match(cuid):
            raise not_found("container", cuid)
        record = await self._repo.get(cuid)
        if record is None or not principal.sees(record.owner):
            raise not_found("container", cuid)
        return record

    def busy(self, cuid: str) -> bool:
        lock = self._locks.get(cuid)
        return lock is not None and lock.locked()

    async def get(self, principal: Principal, cuid: str) -> ContainerRecord:
        principal.require(Permission.CONTAINERS_READ)
        record = await self.owned(principal, cuid)
        if not self.events_live:
            await self.refresh(record)  # events are not followed right now: ask the engine
        return record

    async def live(self, principal: Principal, cuid: str) -> tuple[ContainerRecord, LiveState]:
        principal.require(Permission.CONTAINERS_READ)
        record = await self.owned(principal, cuid)
        state = await self.refresh(record)
        return record, state or LiveState(status=record.status, exit_code=record.exit_code)

    async def page(
        self,
        principal: Principal,
        *,
        statuses: list[Status],
        tag: str | None,
        image: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[ContainerRecord]:
        principal.require(Permission.CONTAINERS_READ)
        check_limit(limit, MAX_PAGE)
        query = ContainerQuery(
            owner=None if principal.is_admin else principal.username,
            statuses=statuses,
            tag=tag,
            image=image,
            limit=limit + 1,
            before_seq=before(cursor),
        )
        return page_of(await self._repo.query(query), limit)

    async def refresh(self, record: ContainerRecord, *, persist: bool = True) -> LiveState | None:
        """Bring the record's state in line with the engine; the engine is the truth."""
        if record.status in (Status.CREATING, Status.FAILED, Status.REMOVING):
            return None
        state = await self._engine.inspect(record.cuid)
        before = (record.status, record.exit_code, record.started_at, record.finished_at)
        if state is None:
            record.status = Status.MISSING
        elif state.status is Status.REMOVING:
            # The engine is removing it behind our back (`docker rm -f`): transitional, and
            # its `destroy` follows. Only Dockyard's own delete writes `removing` (which
            # the reconcile finishes), so a record never waits in it for an event.
            return state
        else:
            record.status = state.status
            record.exit_code = (
                state.exit_code if state.status in (Status.EXITED, Status.DEAD) else None
            )
            record.started_at = state.started_at or record.started_at
            record.finished_at = state.finished_at
        changed = before != (record.status, record.exit_code, record.started_at, record.finished_at)
        if persist and changed:
            await self._repo.save_state(record)
        return state

    # -- create ----------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        spec: ContainerSpec,
        *,
        start: bool,
        provision: Provisioner | None = None,
    ) -> ContainerRecord:
        """``provision`` fills the new container's folder before Compose first sees it."""
        principal.require(Permission.CONTAINERS_CREATE)
        if not await self._engine.image_exists(spec.image):
            raise ValidationError(
                f"image {spec.image} is not on the engine; build or pull it first",
                code="IMAGE_NOT_FOUND",
                details={"field": "image", "provided": spec.image},
            )
        spec = self.with_defaults(spec)
        await self._check_ports(spec.ports, cuid=None)
        record = ContainerRecord(cuid=new_cuid(), owner=principal.username, spec=spec)
        async with self._quotas.admit(record.owner, spec):  # 409 QUOTA_EXCEEDED
            record = await self._repo.insert(record)
        try:
            await self.complete_create(record, start=start, provision=provision)
        except BaseException:
            with suppress(Exception):
                await asyncio.shield(self._undo_create(record))
            raise
        log.info("container.created", cuid=record.cuid, owner=record.owner, image=spec.image)
        self._record(principal, "container.created", record, image=spec.image)
        return record

    async def _undo_create(self, record: ContainerRecord) -> None:
        """Nothing half-made may stay behind: no project, no folder, no record.

        When the engine cannot be asked now (it died mid-create, and the container may
        exist already), the record stays as ``removing`` and keeps the folder: the
        reconcile finishes the ``down`` once the engine is back, so the container is
        never adopted under a cuid whose create the client was told had failed."""
        async with self.locked(record.cuid):
            try:
                await self.finish_delete(record.cuid)
            except DockyardError as exc:
                record.status = Status.REMOVING
                record.error = "the create failed; its clean-up waits for the engine"
                await self._repo.save(record)
                log.warning("container.create_undo_deferred", cuid=record.cuid, error=exc.code)

    async def complete_create(
        self, record: ContainerRecord, *, start: bool, provision: Provisioner | None = None
    ) -> None:
        """Write the project and let Compose create (or create and start) it."""
        cuid = record.cuid
        async with self.locked(cuid):
            await asyncio.to_thread(self._make_folders, cuid)
            if provision is not None:
                await provision(record)  # before the document: boot.py decides what runs
            document = self.document(record)
            await self._compose.write(self.project_dir(cuid), document)
            async with self._heavy:
                if start:
                    await self._compose.up(record.cuid, self.project_dir(record.cuid))
                else:
                    await self._compose.create(cuid, self.project_dir(cuid))
            record.status = Status.CREATED
            await self.refresh(record, persist=False)
            await self._repo.save(record)  # one write: the spec's record and its state

    async def restore_project(self, record: ContainerRecord) -> None:
        """Folder and compose file of a record that has none (an adopted container)."""
        async with self.locked(record.cuid):
            await asyncio.to_thread(self._make_folders, record.cuid)
            await self._compose.write(self.project_dir(record.cuid), self.document(record))

    def _make_folders(self, cuid: str) -> None:
        project = self.project_dir(cuid)
        project.mkdir(mode=0o700, parents=True, exist_ok=True)
        app = project / "app"
        app.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(app, self._config.uid, self._config.gid)

    def with_defaults(self, spec: ContainerSpec) -> ContainerSpec:
        filled = spec.resources.filled(self._config.default_resources)
        return spec if filled == spec.resources else spec.model_copy(update={"resources": filled})

    async def _check_ports(self, ports: list[Port], cuid: str | None) -> None:
        check_host_ports(ports, self._config.reserved_ports, host_access=self._config.host_access)
        for port in ports:
            if port.host and await self._repo.holding_port(port.host, port.protocol, exclude=cuid):
                raise ConflictError(
                    f"host port {port.host}/{port.protocol} is already bound by another container",
                    code="PORT_IN_USE",
                    details={"port": port.host, "protocol": port.protocol},
                )

    # -- update ----------------------------------------------------------------

    async def update(
        self, principal: Principal, cuid: str, patch: dict[str, Any]
    ) -> ContainerRecord:
        principal.require(Permission.CONTAINERS_UPDATE)
        record = await self.owned(principal, cuid)
        spec = self.with_defaults(patched(record.spec, patch))
        if spec.image != record.spec.image and not await self._engine.image_exists(spec.image):
            raise ValidationError(
                f"image {spec.image} is not on the engine",
                code="IMAGE_NOT_FOUND",
                details={"field": "image", "provided": spec.image},
            )
        if spec.resources != record.spec.resources:
            await self._quotas.check(record.owner, spec, replacing=record.cuid)
        record = await self._apply(record, spec)
        # The names of what changed, never values (env values are secrets).
        self._record(principal, "container.updated", record, fields=sorted(patch))
        return record

    async def set_ports(
        self, principal: Principal, cuid: str, ports: list[Port]
    ) -> ContainerRecord:
        principal.require(Permission.CONTAINERS_UPDATE)
        record = await self.owned(principal, cuid)
        await self._check_ports(ports, cuid=cuid)
        spec = record.spec.model_copy(update={"ports": ports})
        record = await self._apply(record, spec)
        self._record(principal, "container.updated", record, fields=["ports"])
        return record

    async def _apply(self, record: ContainerRecord, spec: ContainerSpec) -> ContainerRecord:
        """Store the new spec; recreate a running container so that it takes effect."""
        require_usable(record)
        old_spec = record.spec
        async with self.locked(record.cuid):
            await self.refresh(record)
            running = record.status in (Status.RUNNING, Status.RESTARTING, Status.PAUSED)
            record.spec = spec
            project_dir = self.project_dir(record.cuid)
            await self._compose.write(project_dir, self.document(record))
            if running:
                try:
                    async with self._heavy:
                        await self._compose.up(record.cuid, project_dir)
                except DockyardError:
                    # Put the old container back as it was, then report.
                    record.spec = old_spec
                    await self._compose.write(project_dir, self.document(record))
                    with suppress(DockyardError):
                        async with self._heavy:
                            await self._compose.up(record.cuid, project_dir)
                    await self.refresh(record)
                    raise
            await self._repo.save(record)
            await self.refresh(record)
        return record

    # -- lifecycle -------------------------------------------------------------

    async def act(self, principal: Principal, cuid: str, action: Action) -> ContainerRecord:
        principal.require(Permission.CONTAINERS_CONTROL)
        record = await self._act(await self.owned(principal, cuid), action)
        self._record(
            principal,
            "container.action",
            record,
            action=action.value,
            status=record.status.value,
        )
        return record

    async def _act(self, record: ContainerRecord, action: Action) -> ContainerRecord:
        require_usable(record)
        cuid = record.cuid
        async with self.locked(cuid):
            await self.refresh(record)
            if plan(action, record.status) is Plan.NOOP:
                return record
            project_dir = self.project_dir(cuid)
            async with self._heavy:
                if action is Action.START or (
                    action is Action.RESTART and record.status is not Status.RUNNING
                ):
                    # `up` re-reads the boot rule: /app/boot.py may have arrived since.
                    await self._compose.write(project_dir, self.document(record))
                    await self._compose.up(record.cuid, project_dir)
                else:
                    await self._compose.action(cuid, project_dir, action.value)
            await self.refresh(record)
        log.info("container.action", cuid=cuid, action=action.value, status=record.status.value)
        return record

    def _record(
        self, principal: Principal, change: str, record: ContainerRecord, **details: Any
    ) -> None:
        self._recorder.record(
            Change(change, record.cuid, record.owner, principal.username, details=details)
        )

    # -- delete ----------------------------------------------------------------

    async def delete(self, principal: Principal, cuid: str) -> None:
        principal.require(Permission.CONTAINERS_DELETE)
        record = await self.owned(principal, cuid)
        async with self.locked(cuid):
            record.status = Status.REMOVING
            await self._repo.save_state(record)
            await self.finish_delete(cuid)
        log.info("container.deleted", cuid=cuid)
        self._record(principal, "container.deleted", record)

    async def finish_delete(self, cuid: str) -> None:
        """Remove project, folder and record, in that order (rerun safely if interrupted).

        A failed ``down`` raises and leaves folder and record for the next try."""
        async with self._heavy:
            await self._compose.down(cuid, self.project_dir(cuid))
        await asyncio.to_thread(shutil.rmtree, self.project_dir(cuid), True)
        await self._repo.delete(cuid)
        self._locks.pop(cuid, None)
