"""The composition root: the one place where adapters are built and wired.

``build_services(settings, **overrides)`` builds every adapter and service once and
returns a ``Runtime``; tests pass fakes for the engine, Compose, the hasher and the URL
fetcher. ``Runtime.start()`` brings the service up in order (database, accounts,
engine network, reconcile, background tasks); ``Runtime.stop(deadline)`` takes it down
in uvicorn's order: the server has stopped accepting and closed its connections by
then, so it ends terminal sessions, drains the journals (audit, events) within the
deadline, cancels what is left, and closes the adapters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.crypto import AesGcmBox
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.cgroups import CgroupReader
from dockyard.adapters.engine.images import DockerImages
from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.git import CliGitFetcher
from dockyard.adapters.hostports import port_free
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.adapters.webhooks import HttpWebhookSender
from dockyard.api.deps import Services
from dockyard.domain.access.accounts import AccountService
from dockyard.domain.access.audit import AuditTrail
from dockyard.domain.access.authn import Authenticator, PasswordHasher
from dockyard.domain.access.credentials import TokenSigner
from dockyard.domain.access.permissions import Permission
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.automation.delivery import Deliverer
from dockyard.domain.automation.hooks import DeliveryLimits
from dockyard.domain.automation.webhooks import WebhookService
from dockyard.domain.containers.compose_doc import Placement
from dockyard.domain.containers.ports import PortAllocator, PortRange
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.reconcile import Reconciler, StateFollower
from dockyard.domain.containers.service import ContainerConfig, ContainerService
from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.service import FileLimits, FileService
from dockyard.domain.idempotency import Idempotency
from dockyard.domain.images.builds import BuildConfig, BuildService
from dockyard.domain.images.contexts import ContextBuilder, ContextLimits
from dockyard.domain.images.images import ImageService
from dockyard.domain.images.joblogs import JobLogs
from dockyard.domain.images.jobs import JobService, QueueLimits
from dockyard.domain.images.ports import Credentials, ImageEngine
from dockyard.domain.images.pulls import PullService
from dockyard.domain.images.registries import RegistryService
from dockyard.domain.models import Resources, memory_bytes
from dockyard.domain.observe.events import EventService
from dockyard.domain.observe.logs import LogService
from dockyard.domain.observe.metrics import MetricsService
from dockyard.domain.ports import ComposeRunner, Engine, UrlFetcher
from dockyard.domain.recording import JournalRecorder
from dockyard.domain.terminal.framing import SessionRegistry
from dockyard.domain.terminal.service import TerminalService
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.accounts import (
    SqlAccountRepository,
    SqlQuotaStore,
    SqlRoleRepository,
    SqlServiceKeyRepository,
    SqlTokenRepository,
)
from dockyard.store.containers import SqlContainerRepository
from dockyard.store.idempotency import SqlIdempotencyRepository
from dockyard.store.jobs import SqlJobRepository
from dockyard.store.journal import SqlAuditRepository, SqlEventRepository
from dockyard.store.ports import SqlPortAllocations
from dockyard.store.registries import SqlRegistryRepository
from dockyard.store.webhooks import SqlWebhookRepository

log = structlog.get_logger("dockyard")

PURGE_INTERVAL = 3600.0
STOP_DEADLINE = 5.0  # seconds for the journals to drain when the service stops


@dataclass
class Runtime:
    """Everything the service runs on, with its start and stop order."""

    settings: Settings
    services: Services
    database: Database
    engine: Engine
    roles: RoleBook
    follower: StateFollower
    images: ImageEngine
    deliverer: Deliverer | None = None
    started: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopped: bool = False

    async def start(self) -> None:
        """Bring the service up; a failure leaves nothing running (``DockyardError``
        says what, in one line). Idempotent."""
        if self.started:
            return
        settings, services = self.settings, self.services
        try:
            await self.database.migrate()
            app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
            await services.auth.bootstrap(settings.app_user, app_pass)
            await self.roles.load()
            await services.auth.purge_expired_tokens()
            await self.engine.ensure_network(settings.network_name)
            if settings.build_network != "none":  # never the default bridge
                await self.images.ensure_build_network(settings.build_network)
            await services.builds.recover()
            await services.events.start()
            services.audit.start()
            await services.webhooks.start()
            await services.reconciler.run_once(startup=True)
            await services.idempotency.purge()
        except BaseException:
            await self.stop(0.5)
            raise
        self._spawn(services.reconciler.run_forever(settings.reconcile_interval), "reconcile")
        self._spawn(self.follower.run_forever(), "follow-engine")
        self._spawn(services.metrics.run_forever(), "metrics")
        self._spawn(self._purge_forever(), "purge")
        if self.deliverer is not None:
            self.deliverer.start()
        self.started = True
        log.info("dockyard.started", compose_version=services.compose_version)

    async def _purge_forever(self) -> None:
        """Expired idempotency keys go (they are refused as expired before that too)."""
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                await self.services.idempotency.purge()
            except Exception as exc:  # the store is down: next time
                log.warning("purge.failed", exc_type=type(exc).__name__)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop(self, deadline: float = STOP_DEADLINE) -> None:
        """Drain, then cancel, then close; logs what could not be written. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        services = self.services
        await services.terminals.shutdown()
        for task in self._tasks:  # the producers first: nothing new is queued after this
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        # Running builds and pulls end `failed: interrupted` (their events drain below).
        await services.jobs.stop(max(0.1, deadline / 2))
        if self.deliverer is not None:  # attempts in flight end; the rest stay queued
            await self.deliverer.stop(max(0.1, (deadline - (time.monotonic() - started)) / 2))
        left = max(0.1, deadline - (time.monotonic() - started))
        lost_events, lost_audit = await asyncio.gather(
            services.events.stop(left), services.audit.stop(left)
        )
        # After the events: the deliveries of the last events are queued by then.
        lost_deliveries = await services.webhooks.stop(
            max(0.1, deadline - (time.monotonic() - started))
        )
        await services.auth.close()
        await self.engine.close()
        await self.database.close()
        log.info(
            "dockyard.stopped",
            seconds=round(time.monotonic() - started, 3),
            events_dropped=lost_events,
            audit_dropped=lost_audit,
            deliveries_dropped=lost_deliveries,
        )


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    compose: ComposeRunner | None = None,
    compose_version: str | None = None,
    hasher: PasswordHasher | None = None,
    fetcher: UrlFetcher | None = None,
    images: ImageEngine | None = None,
) -> Runtime:
    """Build every adapter and service once; nothing runs until ``Runtime.start()``."""
    settings.containers_dir.mkdir(parents=True, exist_ok=True)
    if compose is None:
        compose, compose_version = _compose(settings)
    engine = engine or DockerEngine(settings.docker_host, settings.engine_timeout)
    database = _database(settings)
    stores = _Stores.on(database)
    roles = RoleBook(stores.roles)
    quotas = Quotas(SqlQuotaStore(database))
    events = EventService(
        SqlEventRepository(database),
        max_events=settings.events_max,
        follow_max=settings.events_follow_max,
    )
    audit = AuditTrail(SqlAuditRepository(database), commit_wait=settings.sqlite_busy_timeout)
    recorder = JournalRecorder(events, audit)
    if images is None:  # the engine's session (a fake engine: a lazy one of its own)
        docker = engine if isinstance(engine, DockerEngine) else None
        docker = docker or DockerEngine(settings.docker_host, settings.engine_timeout)
        images = DockerImages(docker, idle=settings.registry_idle_timeout)
    containers = ContainerService(
        stores.containers,
        compose,
        engine,
        _container_config(settings),
        heavy_limit=settings.max_concurrency,
        ports=_port_allocator(settings, database),
        images=images,
        accounts=stores.accounts,
        quotas=quotas,
        recorder=recorder,
    )
    auth = _authenticator(settings, stores, roles, hasher)
    image_service, registry_service = _images(settings, database, stores, engine, images, recorder)
    jobs, builds, pulls = _builds(settings, database, images, registry_service, fetcher, recorder)
    metrics = _metrics(settings, containers, engine)
    webhooks, deliverer = _webhooks(settings, database, stores, roles, recorder)
    events.add_listener(webhooks.on_events)
    terminals = _terminals(settings, containers, engine, auth)
    services = Services(
        containers=containers,
        files=_files(settings, containers, engine, fetcher),
        logs=_logs(settings, containers, engine),
        metrics=metrics,
        events=events,
        terminals=terminals,
        auth=auth,
        reconciler=Reconciler(stores.containers, stores.accounts, engine, containers, recorder),
        compose_version=compose_version or "unknown",
        engine_version=engine.version,
        database_ping=database.ping,
        accounts=_accounts(settings, stores, auth, quotas, recorder),
        quotas=quotas,
        audit=audit,
        idempotency=Idempotency(SqlIdempotencyRepository(database)),
        images=image_service,
        registries=registry_service,
        jobs=jobs,
        builds=builds,
        pulls=pulls,
        webhooks=webhooks,
    )
    listeners = [events.engine_event, metrics.engine_event]
    follower = StateFollower(stores.containers, engine, containers, listeners=listeners)
    return Runtime(settings, services, database, engine, roles, follower, images, deliverer)


def _webhooks(
    settings: Settings,
    database: Database,
    stores: _Stores,
    roles: RoleBook,
    recorder: JournalRecorder,
) -> tuple[WebhookService, Deliverer]:
    """Outgoing webhooks: secrets sealed with a key of their own, derived (HKDF, another
    purpose) from the data folder's ``registry-secret``; the sender under data_url's
    SSRF rules; the deliverer within the WEBHOOK_* limits."""
    secret = load_or_create_secret(settings.registry_secret_file)
    box = AesGcmBox.from_secret(secret, purpose=b"dockyard webhook secrets")
    sender = HttpWebhookSender(
        timeout=settings.webhook_timeout, allow_nets=parse_networks(settings.fetch_allow_nets)
    )

    async def sees_all(username: str) -> bool:
        account = await stores.accounts.get(username)
        return account is not None and Permission.RESOURCES_ALL in roles.permissions(account.role)

    repo = SqlWebhookRepository(database)
    service = WebhookService(repo, box, sender, sees_all=sees_all, recorder=recorder)
    limits = DeliveryLimits(
        timeout=settings.webhook_timeout,
        retry_for=settings.webhook_retry_for,
        max_in_flight=settings.webhook_max_in_flight,
        per_webhook=settings.webhook_per_hook,
        backoff_base=settings.webhook_backoff_base,
        backoff_max=settings.webhook_backoff_max,
    )
    return service, Deliverer(repo, service, sender, limits)


def _builds(
    settings: Settings,
    database: Database,
    images: ImageEngine,
    credentials: Credentials,
    fetcher: UrlFetcher | None,
    recorder: JournalRecorder,
) -> tuple[JobService, BuildService, PullService]:
    """The job queue, builds (contexts under JOBS_DIR) and pulls."""
    limits = QueueLimits(
        max_running=settings.builds_max_running,
        max_queued=settings.builds_max_queued,
        per_account=settings.builds_per_account,
        timeout=settings.build_timeout,
    )
    logs = JobLogs(
        settings.jobs_dir, settings.build_log_max_bytes, follow_max=settings.log_follow_max
    )
    jobs = JobService(SqlJobRepository(database), logs, limits, recorder=recorder)
    allow = parse_networks(settings.fetch_allow_nets)
    contexts = ContextBuilder(
        settings.jobs_dir / "contexts",
        ContextLimits(max_bytes=settings.build_context_max_bytes),
        fetcher
        or HttpUrlFetcher(
            max_bytes=min(settings.fetch_max_bytes, settings.build_context_max_bytes),
            timeout=settings.fetch_timeout,
            allow_nets=allow,
        ),
        CliGitFetcher(
            timeout=settings.git_timeout,
            allow_http_hosts=settings.git_allow_http_hosts.split(","),
            allow_nets=allow,
        ),
    )
    config = BuildConfig(
        network=settings.build_network,
        memory=memory_bytes(settings.build_memory),
        cpus=settings.build_cpus,
        push_timeout=settings.push_timeout,
        context_max_bytes=settings.build_context_max_bytes,
    )
    builds = BuildService(jobs, images, contexts, credentials, config)
    return jobs, builds, PullService(jobs, images, credentials, recorder=recorder)


def _images(
    settings: Settings,
    database: Database,
    stores: _Stores,
    engine: Engine,
    images: ImageEngine | None,
    recorder: JournalRecorder,
) -> tuple[ImageService, RegistryService]:
    """The image API shares the engine's session (a fake engine: a lazy one of its own)."""
    if images is None:
        docker = engine if isinstance(engine, DockerEngine) else None
        docker = docker or DockerEngine(settings.docker_host, settings.engine_timeout)
        images = DockerImages(docker, idle=settings.registry_idle_timeout)
    box = AesGcmBox.from_secret(load_or_create_secret(settings.registry_secret_file))
    registries = RegistryService(SqlRegistryRepository(database), box, recorder)
    return ImageService(images, stores.containers, recorder), registries


def _database(settings: Settings) -> Database:
    return Database(
        settings.async_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        busy_timeout=settings.sqlite_busy_timeout,
    )


def _compose(settings: Settings) -> tuple[ComposeRunner, str]:
    binary, version = find_compose_binary(settings.compose_bin)
    runner = CliComposeRunner(
        binary,
        docker_host=settings.docker_host,
        timeout=settings.compose_timeout,
        nice=settings.compose_nice,
        stop_timeout=settings.stop_timeout,
    )
    return runner, version


def _metrics(settings: Settings, containers: ContainerService, engine: Engine) -> MetricsService:
    local = not settings.docker_host or settings.docker_host.startswith("unix://")
    return MetricsService(
        containers,
        engine,
        CgroupReader() if local else None,  # cgroup files are readable on this host only
        interval=settings.metrics_interval,
        idle=settings.metrics_idle,
    )


def _logs(settings: Settings, containers: ContainerService, engine: Engine) -> LogService:
    return LogService(
        containers,
        engine,
        follow_per_container=settings.log_follow_per_container,
        follow_total=settings.log_follow_max,
    )


def _container_config(settings: Settings) -> ContainerConfig:
    placement = Placement(
        network=settings.network_name,
        user=settings.default_user_uid,
        stop_timeout=settings.stop_timeout,
    )
    return ContainerConfig(
        settings.containers_dir,
        placement,
        settings.uid,
        settings.gid,
        default_resources=Resources(
            cpus=settings.default_cpus,
            memory=settings.default_memory,
            pids=settings.default_pids,
        ),
        reserved_ports=frozenset({2375, 2376, settings.port}),
        host_access=settings.host_access,
        public_host=settings.public_host,
    )


def _port_allocator(settings: Settings, database: Database) -> PortAllocator:
    """Host ports from PORT_RANGE; the bind probe only where the engine is this host."""
    local = not settings.docker_host or settings.docker_host.startswith("unix://")
    return PortAllocator(
        SqlPortAllocations(database),
        PortRange.parse(settings.port_range),
        probe=port_free if local else None,
    )


@dataclass(frozen=True)
class _Stores:
    containers: SqlContainerRepository
    accounts: SqlAccountRepository
    roles: SqlRoleRepository
    keys: SqlServiceKeyRepository
    tokens: SqlTokenRepository

    @classmethod
    def on(cls, database: Database) -> _Stores:
        return cls(
            SqlContainerRepository(database),
            SqlAccountRepository(database),
            SqlRoleRepository(database),
            SqlServiceKeyRepository(database),
            SqlTokenRepository(database),
        )


def _authenticator(
    settings: Settings, stores: _Stores, roles: RoleBook, hasher: PasswordHasher | None
) -> Authenticator:
    return Authenticator(
        stores.accounts,
        hasher or Argon2Hasher(),
        MemoryLoginLimiter(settings.login_failures_per_minute),
        settings.credential_cache_ttl,
        roles=roles,
        keys=stores.keys,
        tokens=stores.tokens,
        signer=TokenSigner(load_or_create_secret(settings.token_secret_file)),
    )


def _accounts(
    settings: Settings,
    stores: _Stores,
    auth: Authenticator,
    quotas: Quotas,
    recorder: JournalRecorder,
) -> AccountService:
    return AccountService(
        stores.accounts,
        stores.roles,
        stores.keys,
        stores.tokens,
        auth,
        quotas,
        token_ttl=settings.token_ttl,
        token_max_ttl=settings.token_max_ttl,
        recorder=recorder,
    )


def _files(
    settings: Settings, containers: ContainerService, engine: Engine, fetcher: UrlFetcher | None
) -> FileService:
    limits = FileLimits(
        max_upload_bytes=settings.upload_max_bytes,
        max_download_zip_bytes=settings.download_zip_max_bytes,
        archive=ArchiveLimits(
            max_entries=settings.archive_max_entries,
            max_unpacked_bytes=settings.unpacked_max_bytes,
            max_ratio=settings.archive_max_ratio,
        ),
    )
    fetcher = fetcher or HttpUrlFetcher(
        max_bytes=settings.fetch_max_bytes,
        timeout=settings.fetch_timeout,
        allow_nets=parse_networks(settings.fetch_allow_nets),
    )
    tmp = settings.data_dir / "tmp"
    return FileService(containers, engine, tmp, settings.uid, settings.gid, limits, fetcher=fetcher)


def _terminals(
    settings: Settings, containers: ContainerService, engine: Engine, auth: Authenticator
) -> TerminalService:
    terminals = TerminalService(
        containers,
        engine,
        SessionRegistry(
            settings.terminal_sessions_per_user, settings.terminal_sessions_per_container
        ),
        user=settings.default_user_uid,
    )

    def end_sessions(username: str) -> None:
        # Revocation hook (docs/architecture.md): a revoked principal's sessions end now.
        terminals.registry.end_user(
            username, "credentials_revoked", "the credentials of this session were revoked"
        )

    auth.add_revocation_listener(end_sessions)
    return terminals
