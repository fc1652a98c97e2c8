"""The container service's state and reads (SPEC §4): records, their folders and
Compose documents, and the live state the engine reports (the engine is the truth).

``ContainerService`` (service.py) builds on this with the changes of state.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.automation.activity import ActivitySink, NoActivity
from dockyard.domain.automation.checkin import CheckinTokens
from dockyard.domain.containers.compose_doc import (
    APP_MOUNT,
    Placement,
    compose_document,
    escape,
)
from dockyard.domain.containers.policy import check_document
from dockyard.domain.containers.ports import PortAllocator
from dockyard.domain.containers.quotas import NoQuotas, QuotaGuard
from dockyard.domain.containers.swarm_doc import CONSTRAINTS_LABEL
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.images.ports import ImageEngine
from dockyard.domain.leases import Exclusive, alone
from dockyard.domain.models import (
    CUID,
    ContainerRecord,
    ContainerSpec,
    HostAccess,
    LiveState,
    Resources,
    Status,
)
from dockyard.domain.paging import Page, before, check_limit, page_of
from dockyard.domain.ports import (
    AccountRepository,
    ComposeRunner,
    ContainerQuery,
    ContainerRepository,
    Engine,
)
from dockyard.domain.recording import NullRecorder, Recorder
from dockyard.errors import EngineUnavailableError, ValidationError

MAX_PAGE = 500
BOOT_PY = "boot.py"


def on_volume(record: ContainerRecord) -> bool:
    """Whether the container's ``/app`` is a named volume on its engine (any engine but
    the local one) rather than a folder of this host."""
    return record.engine != LOCAL


class TimerWatch(Protocol):
    """The timers' scheduler, told of every create, change and delete."""

    def watch(self, record: ContainerRecord) -> None: ...

    def forget(self, cuid: str) -> None: ...


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
    # The host name in a published tcp port's ready url (settings.public_host).
    public_host: str = "127.0.0.1"
    # Timers (issue 11): a new container's idle timeout unless its create says one
    # (settings.idle_timeout); the check-in tokens put into each container's env.
    idle_timeout: float | None = None
    checkin: CheckinTokens | None = None
    # Scale (issue 11): the most replicas a container may have (settings.max_replicas).
    max_replicas: int = 10


class ContainerReads:
    """What a container service holds, and its reads: records, paths, documents and
    the live state (``ContainerService`` adds the changes)."""

    def __init__(
        self,
        repo: ContainerRepository,
        compose: ComposeRunner,
        engine: Engine,
        config: ContainerConfig,
        heavy_limit: int,
        *,
        ports: PortAllocator,
        images: ImageEngine,
        accounts: AccountRepository,
        quotas: QuotaGuard | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._repo = repo
        self.ports = ports
        self._images = images
        self._accounts = accounts
        self._recorder: Recorder = recorder or NullRecorder()
        self._compose = compose
        self._engine = engine
        self._config = config
        self._quotas: QuotaGuard = quotas or NoQuotas()
        self._heavy = asyncio.Semaphore(heavy_limit)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # A container's lock in other processes on the same database too (set by wiring).
        self.exclusive: Exclusive = alone
        # Whether an admin turned host access on for an engine (set by wiring).
        self.host_access_on: Callable[[str], bool] = lambda _engine: False
        # Activity marks and the timers' scheduler (domain/automation/), set by wiring.
        self.activity: ActivitySink = NoActivity()
        self.timers: TimerWatch | None = None
        # True while the engine's event stream is followed (StateFollower): statuses in
        # the store are then current, and a read need not ask the engine again.
        self.events_live = False
        # Told of each create's engine (domain/engines/routing.py EngineRoutes.pin).
        self.pin: Callable[[str, str], None] = lambda _cuid, _engine: None
        self._boots: dict[str, bool] = {}  # cuid -> /app/boot.py seen (a volume's /app)

    @property
    def public_host(self) -> str:
        return self._config.public_host

    # -- paths and documents ---------------------------------------------------

    def project_dir(self, cuid: str) -> Path:
        return self._config.containers_dir / cuid

    def app_dir(self, cuid: str) -> Path:
        return self.project_dir(cuid) / "app"

    def document(self, record: ContainerRecord) -> dict[str, Any]:
        """On another engine than the local one, ``/app`` is a named volume there (no
        folder of this host); whether it holds boot.py is what ``find_boot`` last saw."""
        app_dir = self.app_dir(record.cuid)
        volume = on_volume(record)
        host = self._host_grant(record)
        doc = compose_document(
            record.cuid,
            record.owner,
            self.with_defaults(record.spec),
            app_dir,
            self._config.placement,
            boot_py=self._boots.get(record.cuid, False)
            if volume
            else (app_dir / "boot.py").is_file(),
            extra_env=self._checkin_env(record),
            replicas=record.replicas,
            replica_ports=record.replica_ports,
            volume=volume,
            host=host,
        )
        if record.constraints:  # a swarm engine makes them node constraints (swarm_doc)
            label = json.dumps(record.constraints, sort_keys=True, separators=(",", ":"))
            for service in doc["services"].values():
                service["labels"][CONSTRAINTS_LABEL] = escape(label)
        check_document(
            doc,
            app_dir,
            self._config.placement.network,
            volume=volume,
            host=host,
        )
        return doc

    def _host_grant(self, record: ContainerRecord) -> HostAccess | None:
        """The host access ``record`` asked for (an admin, at create), while its engine
        still allows it; every document written is checked against it."""
        host = record.spec.host
        if host is None or not host.asked:
            return None
        if not self.host_access_on(record.engine):
            raise ValidationError(
                f"host access is off on engine {record.engine}: this container asks for it "
                '(an admin turns it on with PATCH /engines/{id} {"host_access": true})',
                code="HOST_ACCESS_DENIED",
                details={"field": "host", "engine": record.engine},
            )
        return host

    async def find_boot(self, record: ContainerRecord) -> None:
        """Look for /app/boot.py in a volume's /app, through the engine (before a start
        writes the document again; a host folder's is looked at by ``document``)."""
        if on_volume(record):
            found = await self._engine.archive_stat(record.cuid, f"{APP_MOUNT}/{BOOT_PY}")
            self._boots[record.cuid] = found is not None and not found.is_dir

    def _checkin_env(self, record: ContainerRecord) -> dict[str, str]:
        checkin = self._config.checkin
        if checkin is None or record.checkin_token_hash is None:
            return {}
        return checkin.env(record.cuid)

    @asynccontextmanager
    async def locked(self, cuid: str) -> Any:
        async with self._locks[cuid], self.exclusive(f"container:{cuid}"):
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
        if not self.events_live or record.engine != LOCAL:
            # Events are not followed right now (the local engine's are; another engine's
            # state is asked for): ask the engine.
            try:
                await self.refresh(record)
            except EngineUnavailableError:
                if record.engine == LOCAL:
                    raise
                # Another engine that cannot be reached: the record as last known (the
                # API shows it `unknown`, with when its engine last answered).
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
        owner: str | None = None,
    ) -> Page[ContainerRecord]:
        """``owner`` filters (admins); another account's name lists nothing for others."""
        principal.require(Permission.CONTAINERS_READ)
        check_limit(limit, MAX_PAGE)
        if not principal.is_admin:
            if owner not in (None, principal.username):
                return Page([], None)
            owner = principal.username
        query = ContainerQuery(
            owner=owner,
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
        before = (
            record.status,
            record.exit_code,
            record.started_at,
            record.finished_at,
            record.restart_count,
            record.error,
        )
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
            record.restart_count = state.restart_count
            if state.detail is not None:  # the engine's word on why it does not run
                record.error = state.detail or None
        changed = before != (
            record.status,
            record.exit_code,
            record.started_at,
            record.finished_at,
            record.restart_count,
            record.error,
        )
        if persist and changed:
            await self._repo.save_state(record)
        return state

    def with_defaults(self, spec: ContainerSpec) -> ContainerSpec:
        filled = spec.resources.filled(self._config.default_resources)
        return spec if filled == spec.resources else spec.model_copy(update={"resources": filled})
