"""The container lifecycle: create, update, control, delete (SPEC §4).

Changes of state go through Compose (``ComposeRunner``); reads come from the store
and the Engine API (``Engine``, see reads.py) and never shell out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from typing import Any

import structlog

from dockyard.domain.access.audit import AuditEntry
from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.automation.lifetime import apply_timers, split_timers
from dockyard.domain.containers.automatic import AutomaticActions
from dockyard.domain.containers.lifecycle import Action, Plan, plan, require_usable
from dockyard.domain.containers.ports import drawn_keys, exposed_ports, with_exposed
from dockyard.domain.containers.reads import MAX_PAGE, ContainerConfig, on_volume
from dockyard.domain.containers.recreate import Recreation
from dockyard.domain.containers.scaling import ScalingActions
from dockyard.domain.containers.specs import (
    check_host_ports,
    engine_refused_port,
    patched,
    status_action,
)
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.engines.placement import PlacementRequest, image_missing
from dockyard.domain.models import ContainerRecord, ContainerSpec, Port, Status, new_cuid
from dockyard.domain.recording import Change, audit_in_change
from dockyard.errors import ConflictError, DockyardError, ForbiddenError, ValidationError

__all__ = ["MAX_PAGE", "ContainerConfig", "ContainerService", "Provisioner"]

log = structlog.get_logger("dockyard.containers")

BIND_ATTEMPTS = 3  # a drawn host port the engine cannot bind is drawn again this often

Provisioner = Callable[[ContainerRecord], Awaitable[None]]


class ContainerService(AutomaticActions, ScalingActions, Recreation):
    """Creates and drives containers on behalf of principals."""

    # -- create ----------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        spec: ContainerSpec,
        *,
        start: bool,
        provision: Provisioner | None = None,
        owner: str | None = None,
        timers: dict[str, Any] | None = None,
        placement: PlacementRequest | None = None,
    ) -> ContainerRecord:
        """``provision`` fills the new container's folder before Compose first sees it;
        ``owner`` (admins only) creates it for another account, under its quotas;
        ``timers`` are its ``idle_timeout``, ``ttl`` or ``expires_at`` (lifetime.py);
        ``placement`` its ``engine`` or ``constraints`` (engines/placement.py)."""
        principal.require(Permission.CONTAINERS_CREATE)
        spec, wanted = _host_access(principal, spec, placement or PlacementRequest())
        owner = await self._owner_for(principal, owner)
        # The local engine's image check, asked while placement reads the engines; a
        # create placed elsewhere is checked there (placer.admit's ``image``), and one
        # naming another engine only there.
        local_image = (
            asyncio.ensure_future(self._engine.image_exists(spec.image))
            if wanted.engine in (None, LOCAL)
            else None
        )
        try:
            return await self._create(
                principal, spec, wanted, owner, start, provision, timers, local_image
            )
        finally:
            if local_image is not None:
                if not local_image.done():
                    local_image.cancel()
                elif not local_image.cancelled():
                    local_image.exception()  # retrieved: an answer refused before it

    async def _create(
        self,
        principal: Principal,
        spec: ContainerSpec,
        wanted: PlacementRequest,
        owner: str,
        start: bool,
        provision: Provisioner | None,
        timers: dict[str, Any] | None,
        local_image: asyncio.Future[bool] | None,
    ) -> ContainerRecord:
        async def image_checked() -> None:
            if local_image is not None and not await local_image:
                raise image_missing(spec.image, LOCAL)

        spec = self.with_defaults(spec)
        check_host_ports(
            spec.ports, self._config.reserved_ports, host_access=self._config.host_access
        )
        if spec.publish_all:
            await image_checked()
            info = await self._images.inspect_image(spec.image)
            exposed = exposed_ports(info.exposed_ports if info else ())
            spec = spec.model_copy(update={"ports": with_exposed(spec.ports, exposed)})
        record = ContainerRecord(
            cuid=new_cuid(), owner=owner, spec=spec, constraints=dict(wanted.constraints)
        )
        self._start_lifetime(record, timers or {})
        try:  # 409 NO_CAPACITY: the decision holds until the record is stored
            async with self.placer.admit(wanted, spec.resources, image=spec.image) as engine:
                await image_checked()
                record.engine = engine
                self.pin(record.cuid, engine)  # its calls go to that engine (routing.py)
                ports, _ = await self.ports.claim(record.cuid, record.engine, spec.ports)
                drawn = drawn_keys(ports, spec.ports)
                record.spec = spec.model_copy(update={"ports": ports})
                async with self._quotas.admit(record.owner, spec):  # 409 QUOTA_EXCEEDED
                    record = await self._repo.insert(record)
        except BaseException:
            await asyncio.shield(self.ports.release(record.cuid))
            raise
        if self.timers is not None and spec.auto_remove:
            self.timers.watch(record)  # its end (the engine's die) may come before the 201
        try:
            with audit_in_change(record.cuid) as entry:  # the request's, with the last write
                await self._complete_binding(record, start, provision, drawn, entry)
        except BaseException:
            with suppress(Exception):
                await asyncio.shield(self._undo_create(record))
            raise
        if self.timers is not None:
            self.timers.watch(record)
        log.info("container.created", cuid=record.cuid, owner=record.owner, image=spec.image)
        self._record(principal, "container.created", record, image=spec.image)
        return record

    async def _owner_for(self, principal: Principal, owner: str | None) -> str:
        if owner is None or owner == principal.username:
            return principal.username
        if not principal.is_admin:
            raise ForbiddenError(
                "only an admin may create a container for another account",
                code="PERMISSION_DENIED",
                details={"field": "owner"},
            )
        if await self._accounts.get(owner) is None:
            raise ValidationError(
                f"there is no account {owner!r}",
                code="UNKNOWN_OWNER",
                details={"field": "owner", "provided": owner},
            )
        return owner

    async def _complete_binding(
        self,
        record: ContainerRecord,
        start: bool,
        provision: Provisioner | None,
        drawn: set[tuple[int, str]],
        entry: AuditEntry | None,
    ) -> None:
        """``complete_create``; a drawn host port the engine cannot bind (something
        outside Dockyard holds it) is drawn again, a fixed one is the client's 409."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                await self.complete_create(record, start=start, provision=provision, audit=entry)
                return
            except ConflictError as exc:
                host = engine_refused_port(exc)
                if attempt == BIND_ATTEMPTS or host not in {h for h, _ in drawn}:
                    raise
                log.info("container.port_redrawn", cuid=record.cuid, port=host)
                ports, new = await self.ports.redraw(
                    record.cuid, record.engine, record.spec.ports, host
                )
                drawn = {key for key in drawn if key[0] != host} | new
                record.spec = record.spec.model_copy(update={"ports": ports})
                provision = None  # the folder is filled already

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
        self,
        record: ContainerRecord,
        *,
        start: bool,
        provision: Provisioner | None = None,
        audit: AuditEntry | None = None,
    ) -> None:
        """Write the project and let Compose create (or create and start) it; ``audit``
        (the request's entry) is committed with the record's last write."""
        cuid = record.cuid
        async with self.locked(cuid):
            await asyncio.to_thread(self._make_folders, record)
            if on_volume(record) and provision is not None:
                await self._provision_volume(record, start, provision)
            else:
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
            # One write: the spec's record, its state and the request's audit entry.
            await self._repo.save(record, audit=audit)

    async def _provision_volume(
        self, record: ContainerRecord, start: bool, provision: Provisioner
    ) -> None:
        """/app is a volume on the container's engine: Compose creates the project (and
        the volume) first, the files go in through the engine, then boot.py is looked
        for and the container made again with it (files/backends.py)."""
        project_dir = self.project_dir(record.cuid)
        await self._compose.write(project_dir, self.document(record))
        async with self._heavy:
            await self._compose.create(record.cuid, project_dir)
        await provision(record)
        await self.find_boot(record)
        await self._compose.write(project_dir, self.document(record))
        async with self._heavy:
            if start:
                await self._compose.up(record.cuid, project_dir)
            else:
                await self._compose.create(record.cuid, project_dir)

    async def restore_project(self, record: ContainerRecord) -> None:
        """Folder and compose file of a record that has none (an adopted container)."""
        async with self.locked(record.cuid):
            await asyncio.to_thread(self._make_folders, record)
            await self._compose.write(self.project_dir(record.cuid), self.document(record))

    def _make_folders(self, record: ContainerRecord) -> None:
        """The project folder (its compose file); ``app/`` unless ``/app`` is a volume."""
        project = self.project_dir(record.cuid)
        project.mkdir(mode=0o700, parents=True, exist_ok=True)
        if on_volume(record):
            return
        app = project / "app"
        app.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(app, self._config.uid, self._config.gid)

    # -- update ----------------------------------------------------------------

    async def update(
        self, principal: Principal, cuid: str, patch: dict[str, Any]
    ) -> ContainerRecord:
        if "status" in patch:  # seed 003: {"status": "stopped" | "running"}, alone
            return await self.act(principal, cuid, status_action(patch))
        principal.require(Permission.CONTAINERS_UPDATE)
        timers, spec_patch = split_timers(patch)
        if timers and not spec_patch:
            record = await self._set_timers(principal, cuid, timers)
            self._record(principal, "container.updated", record, fields=sorted(patch))
            return record
        record = await self.owned(principal, cuid)
        if timers:
            apply_timers(record, timers)  # stored with the spec, by _apply
        patch = spec_patch
        spec = self.with_defaults(patched(record.spec, patch))
        if spec.image != record.spec.image and not await self._engine.image_exists(spec.image):
            raise ValidationError(
                f"image {spec.image} is not on the engine",
                code="IMAGE_NOT_FOUND",
                details={"field": "image", "provided": spec.image},
            )
        if spec.resources != record.spec.resources:
            await self._quotas.check(
                record.owner, spec, replacing=record.cuid, count=record.replicas
            )
        record = await self._apply(record, spec)
        if timers and self.timers is not None:
            self.timers.watch(record)
        # The names of what changed, never values (env values are secrets).
        self._record(principal, "container.updated", record, fields=sorted({*patch, *timers}))
        return record

    async def set_ports(
        self, principal: Principal, cuid: str, ports: list[Port]
    ) -> ContainerRecord:
        principal.require(Permission.CONTAINERS_UPDATE)
        record = await self.owned(principal, cuid)
        require_usable(record)
        self.require_single(record)  # replicas' ports follow the first's (scaling.py)
        self._check_fixed(ports)
        claimed, fresh = await self.ports.claim(
            record.cuid, record.engine, ports, current=record.spec.ports
        )
        try:
            record = await self._apply(record, record.spec.model_copy(update={"ports": claimed}))
        except BaseException:
            await asyncio.shield(self.ports.release(record.cuid, fresh))
            raise
        await self.ports.keep_only(record.cuid, claimed)
        self._record(principal, "container.updated", record, fields=["ports"])
        return record

    def _check_fixed(self, ports: list[Port]) -> None:
        check_host_ports(ports, self._config.reserved_ports, host_access=self._config.host_access)

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
                    await self.find_boot(record)
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
            with audit_in_change(cuid) as entry:  # the request's, with the record's delete
                await self.finish_delete(cuid, audit=entry)
        log.info("container.deleted", cuid=cuid)
        self._record(principal, "container.deleted", record)

    async def finish_delete(self, cuid: str, *, audit: AuditEntry | None = None) -> None:
        """Remove project, folder and record, in that order (rerun safely if interrupted);
        ``audit`` (the request's entry) is committed with the record's delete.

        A failed ``down`` raises and leaves folder and record for the next try."""
        async with self._heavy:
            await self._compose.down(cuid, self.project_dir(cuid))
        await asyncio.to_thread(shutil.rmtree, self.project_dir(cuid), True)
        await self._repo.delete(cuid, audit=audit)  # with its host-port claims
        self._locks.pop(cuid, None)
        self._boots.pop(cuid, None)
        if self.timers is not None:
            self.timers.forget(cuid)


def _host_access(
    principal: Principal, spec: ContainerSpec, placement: PlacementRequest
) -> tuple[ContainerSpec, PlacementRequest]:
    """Host access is an admin's to ask for, and only on an engine that allows it (the
    placement's rule); an empty ``host`` asks for nothing and is dropped."""
    if spec.host is None:
        return spec, placement
    if not spec.host.asked:
        return spec.model_copy(update={"host": None}), placement
    if not principal.is_admin:
        raise ForbiddenError(
            "host access (privileged, host paths, devices, capabilities) is for admins only",
            code="HOST_ACCESS_DENIED",
            details={"field": "host"},
        )
    return spec, replace(placement, host_access=True)
