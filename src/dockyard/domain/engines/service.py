"""``/engines``: the engines Dockyard drives, declared by admins and watched.

The default engine ``local`` (DOCKER_HOST's) exists from start-up and cannot be removed.
Another engine is added by its address; a ``tcp://`` one needs TLS client files (sealed
at rest, bound to the engine's id and address, never returned) unless the admin setting
``ENGINES_ALLOW_PLAIN_TCP`` allows plain tcp to a loopback address. An engine that holds
containers cannot be removed: drain it (no new containers go there) and empty it first.
A create is placed by ``admit`` (placement.py decides; one lock here makes the decision
and the caller's insert atomic within this process).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.engines.cluster import ClusterInfo, ContainerUse, cluster_info
from dockyard.domain.engines.models import (
    LOCAL,
    EngineChanges,
    EngineDraft,
    EngineKind,
    EngineRecord,
    EngineView,
    TlsFiles,
    check_addr,
    check_engine_id,
    check_labels,
    check_tls,
    host_of,
    is_loopback,
)
from dockyard.domain.engines.placement import (
    EngineRoom,
    Need,
    PlacementRequest,
    choose,
    image_missing,
    rooms_of,
    sums_matter,
    worth_polling,
)
from dockyard.domain.engines.watcher import EngineWatcher
from dockyard.domain.images.registries import SecretBox
from dockyard.domain.leases import Exclusive, alone
from dockyard.domain.models import Resources, utcnow
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import ConflictError, ValidationError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineRepository(Protocol):
    async def insert(self, record: EngineRecord) -> None: ...
    async def get(self, engine_id: str) -> EngineRecord | None: ...
    async def all(self) -> list[EngineRecord]: ...
    async def save(self, record: EngineRecord) -> None: ...
    async def delete(self, engine_id: str) -> None: ...
    async def containers_on(self, engine_id: str) -> int: ...
    async def usage(self) -> list[ContainerUse]:
        """Every container record's engine, status and declared resources."""
        ...


@dataclass(frozen=True)
class EngineConfig:
    local_addr: str | None  # DOCKER_HOST; None: the platform default socket
    allow_plain_tcp: bool = False  # plain tcp:// to a loopback address only
    default_resources: Resources = field(default_factory=Resources)


class EngineService:
    """The registry of engines, its watcher, and ``/cluster/info``."""

    def __init__(
        self,
        repo: EngineRepository,
        box: SecretBox,
        watcher: EngineWatcher,
        config: EngineConfig,
        recorder: Recorder | None = None,
        exclusive: Exclusive = alone,
    ) -> None:
        self._repo = repo
        self._box = box
        self._exclusive = exclusive  # the placement lock of every process
        self.watcher = watcher
        self._config = config
        self._recorder = recorder or NullRecorder()
        self._placing = asyncio.Lock()
        self._host_access: dict[str, bool] = {}  # engine id -> its switch (``rooms`` reads)
        # Told of an engine added or removed (its clients are built again: routing.py).
        self.on_change: Callable[[str], Awaitable[None]] | None = None
        # (engine id, image) -> whether that engine has the image (routing.py sets it).
        self.has_image: Callable[[str, str], Awaitable[bool]] | None = None

    # -- start and stop (Runtime) ------------------------------------------------------

    async def start(self) -> None:
        """The local engine's record (DOCKER_HOST's address), then every engine watched."""
        addr = self._config.local_addr or DEFAULT_SOCKET
        local = await self._repo.get(LOCAL)
        if local is None:
            now = utcnow()
            local = EngineRecord(
                LOCAL, addr, EngineKind.LOCAL, {}, None, None, None, False, now, now
            )
            await self._repo.insert(local)
        elif local.addr != addr:  # DOCKER_HOST changed: the local engine follows it
            local = replace(local, addr=addr, updated_at=utcnow())
            await self._repo.save(local)
        for record in await self._repo.all():
            await self.watcher.watch(record, self._tls_of(record))
        await self.watcher.poll(LOCAL)  # the others' first polls may take their deadline
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()

    # -- reads ---------------------------------------------------------------------------

    async def list(self, principal: Principal) -> list[EngineView]:
        principal.require(Permission.ENGINES_READ)
        return [self._view(r) for r in await self._repo.all()]

    async def get(self, principal: Principal, engine_id: str) -> EngineView:
        principal.require(Permission.ENGINES_READ)
        return self._view(await self._stored(engine_id))

    async def cluster(self, principal: Principal) -> ClusterInfo:
        principal.require(Permission.ENGINES_READ)
        views = [self._view(r) for r in await self._repo.all()]
        return cluster_info(views, await self._repo.usage(), self._config.default_resources)

    async def connection(self, engine_id: str) -> tuple[EngineRecord, TlsFiles | None] | None:
        """An engine's record and its opened TLS files (the per-engine clients of
        routing.py); None when there is no such engine."""
        record = await self._repo.get(engine_id)
        return None if record is None else (record, self._tls_of(record))

    async def remote_ids(self) -> Sequence[str]:
        """The engines Dockyard runs containers on besides the local one."""
        kinds = (EngineKind.REMOTE, EngineKind.SWARM)  # a swarm's: swarm.py's follower
        return [r.id for r in await self._repo.all() if r.kind in kinds]

    def reachable(self, engine_id: str) -> bool | None:
        """The watcher's word: False only after a poll that failed."""
        return self.watcher.health(engine_id).reachable

    # -- placement (placement.py) ------------------------------------------------------

    @asynccontextmanager
    async def admit(
        self,
        request: PlacementRequest,
        resources: Resources,
        *,
        count: int = 1,
        image: str | None = None,
    ) -> AsyncIterator[str]:
        """The engine a container of ``resources`` (its defaults filled) times ``count``
        goes to; the decision holds until the caller's block (its insert) ends, so two
        creates never both take the last room, in this process or another on the same
        database (``exclusive``: an advisory lock on PostgreSQL). ``image``: checked on
        the chosen engine unless it is the local one (400 ``IMAGE_NOT_FOUND``)."""
        need = Need.of(resources, count)
        async with self._placing, self._exclusive("placement"):
            rooms = await self.rooms(for_placement=True)
            stale = worth_polling(rooms, request)
            try:
                engine = choose(rooms, request, need)
            except ConflictError:
                if not stale:
                    raise
                await asyncio.gather(*(self.watcher.poll(engine_id) for engine_id in stale))
                engine = choose(await self.rooms(for_placement=True), request, need)
            if image is not None and engine != LOCAL and self.has_image is not None:
                if not await self.has_image(engine, image):
                    raise image_missing(image, engine)
            yield engine

    async def rooms(self, *, for_placement: bool = False) -> Sequence[EngineRoom]:
        """Every engine with what Dockyard reserves there (the sums of /cluster/info);
        for a placement the sums are left out when they cannot change it (sums_matter)."""
        views = [self._view(r) for r in await self._repo.all()]
        if for_placement and not sums_matter(views):
            return rooms_of(views, (), self._config.default_resources)
        return rooms_of(views, await self._repo.usage(), self._config.default_resources)

    # -- changes -------------------------------------------------------------------------

    async def add(self, principal: Principal, draft: EngineDraft) -> EngineView:
        principal.require(Permission.ENGINES_MANAGE)
        record = self._checked(draft)
        if await self._repo.get(record.id) is not None:
            raise ConflictError(
                f"engine {record.id} exists already",
                code="ENGINE_EXISTS",
                details={"id": record.id},
            )
        if any(r.addr == record.addr for r in await self._repo.all()):
            raise ConflictError(
                f"an engine at {record.addr} exists already",
                code="ENGINE_ADDR_TAKEN",
                details={"addr": record.addr},
            )
        if draft.tls is not None:
            plain = json.dumps(draft.tls.__dict__).encode()
            record = replace(record, tls=self._box.seal(plain, record.tls_context))
        await self._repo.insert(record)
        await self._changed(record.id)
        await self.watcher.watch(record, draft.tls)
        await self.watcher.poll(record.id)  # the answer says whether it answered
        self._record("engine.added", record, principal.username)
        return self._view(record)

    async def update(
        self, principal: Principal, engine_id: str, changes: EngineChanges
    ) -> EngineView:
        principal.require(Permission.ENGINES_MANAGE)
        record = await self._stored(engine_id)
        updated = record
        if "labels" in changes.given:
            updated = replace(updated, labels=check_labels(changes.labels or {}))
        if "cpus" in changes.given:
            updated = replace(updated, cpus=changes.cpus)
        if "memory" in changes.given:
            updated = replace(updated, memory=changes.memory)
        if "draining" in changes.given and changes.draining is not None:
            updated = replace(updated, draining=changes.draining)
        if "host_access" in changes.given and changes.host_access is not None:
            updated = replace(updated, host_access=changes.host_access)
        if updated != record:
            updated = replace(updated, updated_at=utcnow())
            await self._repo.save(updated)
            self._host_access[updated.id] = updated.host_access
            action = "engine.updated"
            if updated.draining != record.draining:
                action = "engine.drained" if updated.draining else "engine.undrained"
            if updated.host_access != record.host_access:  # a switch of its own in the audit
                action = "engine.host_access_" + ("on" if updated.host_access else "off")
            self._record(action, updated, principal.username)
        return self._view(updated)

    async def load(self) -> None:
        """Each engine's host-access switch, before anything writes a Compose document."""
        for record in await self._repo.all():
            self._host_access[record.id] = record.host_access

    def allows_host_access(self, engine_id: str) -> bool:
        """Whether an admin turned host access on for ``engine_id`` (as this process last
        read or changed it; every Compose document Dockyard writes is checked with it)."""
        return self._host_access.get(engine_id, False)

    async def set_draining(
        self, principal: Principal, engine_id: str, draining: bool
    ) -> EngineView:
        changes = EngineChanges(frozenset({"draining"}), draining=draining)
        return await self.update(principal, engine_id, changes)

    async def remove(self, principal: Principal, engine_id: str) -> None:
        principal.require(Permission.ENGINES_MANAGE)
        record = await self._stored(engine_id)
        if record.id == LOCAL:
            raise ConflictError(
                "the local engine (DOCKER_HOST's) cannot be removed; drain it instead",
                code="ENGINE_LOCAL",
                details={"id": engine_id},
            )
        held = await self._repo.containers_on(engine_id)
        if held:
            raise ConflictError(
                f"engine {engine_id} holds {held} container(s): drain it, remove them, "
                "then remove the engine",
                code="ENGINE_IN_USE",
                details={"id": engine_id, "containers": held, "draining": record.draining},
            )
        await self._repo.delete(engine_id)
        await self._changed(engine_id)
        await self.watcher.unwatch(engine_id)
        self._record("engine.removed", record, principal.username)

    # -- helpers -------------------------------------------------------------------------

    def _checked(self, draft: EngineDraft) -> EngineRecord:
        addr = check_addr(draft.addr)
        engine_id = check_engine_id(draft.id) if draft.id else "e" + uuid.uuid4().hex[:12]
        if engine_id == LOCAL:
            raise ConflictError(
                "the local engine exists already (it is DOCKER_HOST's)",
                code="ENGINE_EXISTS",
                details={"id": LOCAL},
            )
        tls = check_tls(draft.tls) if draft.tls is not None else None
        if addr.startswith("tcp://") and tls is None:
            plain_ok = self._config.allow_plain_tcp and is_loopback(host_of(addr))
            if not plain_ok:
                raise ValidationError(
                    "a tcp:// engine needs TLS client files (tls.ca, tls.cert, tls.key)",
                    code="ENGINE_TLS_REQUIRED",
                    details={"field": "tls", "addr": addr},
                )
        if tls is not None and not addr.startswith("tcp://"):
            raise ValidationError(
                "TLS files are for tcp:// engines only",
                code="INVALID_ENGINE_TLS",
                details={"field": "tls", "addr": addr},
            )
        now = utcnow()
        kind = draft.kind or EngineKind.REMOTE  # remote unless marked local (issue 12)
        labels = check_labels(draft.labels)
        return EngineRecord(
            engine_id, addr, kind, labels, draft.cpus, draft.memory, None, False, now, now
        )

    async def _stored(self, engine_id: str) -> EngineRecord:
        record = await self._repo.get(engine_id)
        if record is None:
            raise not_found("engine", engine_id)
        return record

    def _tls_of(self, record: EngineRecord) -> TlsFiles | None:
        if record.tls is None:
            return None
        data = json.loads(self._box.open(record.tls, record.tls_context))
        return TlsFiles(ca=data["ca"], cert=data["cert"], key=data["key"])

    async def _changed(self, engine_id: str) -> None:
        if self.on_change is not None:
            await self.on_change(engine_id)

    def _view(self, record: EngineRecord) -> EngineView:
        self._host_access[record.id] = record.host_access
        return EngineView(record, self.watcher.health(record.id))

    def _record(self, action: str, record: EngineRecord, actor: str) -> None:
        self._recorder.record(
            Change(
                action=action,
                resource=record.id,
                owner=None,
                actor=actor,
                details={
                    "engine": record.id,
                    "addr": record.addr,
                    "kind": record.kind.value,
                    "host_access": record.host_access,
                },
            )
        )
