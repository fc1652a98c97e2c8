"""The builders build_services calls, one per part of the service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.crypto import AesGcmBox
from dockyard.adapters.engine.cgroups import CgroupReader
from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.hostports import port_free
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.adapters.webhooks import HttpWebhookSender
from dockyard.domain.access.accounts import AccountService
from dockyard.domain.access.authn import Authenticator, PasswordHasher
from dockyard.domain.access.credentials import TokenSigner
from dockyard.domain.access.permissions import Permission
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.automation.activity import ActivityTracker
from dockyard.domain.automation.checkin import CheckinTokens, derived_base_url
from dockyard.domain.automation.delivery import Deliverer
from dockyard.domain.automation.hooks import DeliveryLimits
from dockyard.domain.automation.timers import TimerScheduler
from dockyard.domain.automation.webhooks import WebhookService
from dockyard.domain.containers.compose_doc import Placement
from dockyard.domain.containers.ports import PortAllocator, PortRange
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.service import ContainerConfig, ContainerService
from dockyard.domain.engines.routing import ArchiveEngine
from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.service import FileLimits, FileService
from dockyard.domain.images.ports import ImageEngine
from dockyard.domain.models import Resources
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
    SqlRoleRepository,
    SqlServiceKeyRepository,
    SqlTokenRepository,
)
from dockyard.store.containers import SqlContainerRepository
from dockyard.store.ports import SqlPortAllocations
from dockyard.store.webhooks import SqlWebhookRepository


@dataclass(frozen=True)
class Stores:
    containers: SqlContainerRepository
    accounts: SqlAccountRepository
    roles: SqlRoleRepository
    keys: SqlServiceKeyRepository
    tokens: SqlTokenRepository

    @classmethod
    def on(cls, database: Database) -> Stores:
        return cls(
            SqlContainerRepository(database, cache=not database.shared),
            SqlAccountRepository(database),
            SqlRoleRepository(database),
            SqlServiceKeyRepository(database),
            SqlTokenRepository(database),
        )


def webhooks(
    settings: Settings,
    database: Database,
    stores: Stores,
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


def database(settings: Settings) -> Database:
    return Database(
        settings.async_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        busy_timeout=settings.sqlite_busy_timeout,
    )


def compose(settings: Settings) -> tuple[ComposeRunner, str]:
    binary, version = find_compose_binary(settings.compose_bin)
    return compose_runner(settings, binary, docker_host=settings.docker_host), version


def compose_runner(
    settings: Settings,
    binary: Path,
    *,
    docker_host: str | None,
    env: dict[str, str] | None = None,
    remove_volumes: bool = False,
) -> CliComposeRunner:
    """A runner of ``binary`` (Compose, or the docker CLI for stacks) with the settings'
    deadline, niceness and stop timeout."""
    return CliComposeRunner(
        binary,
        docker_host=docker_host,
        timeout=settings.compose_timeout,
        nice=settings.compose_nice,
        stop_timeout=settings.stop_timeout,
        env=env,
        remove_volumes=remove_volumes,
    )


def metrics(settings: Settings, containers: ContainerService, engine: Engine) -> MetricsService:
    local = not settings.docker_host or settings.docker_host.startswith("unix://")
    return MetricsService(
        containers,
        engine,
        CgroupReader() if local else None,  # cgroup files are readable on this host only
        interval=settings.metrics_interval,
        idle=settings.metrics_idle,
    )


def logs(settings: Settings, containers: ContainerService, engine: Engine) -> LogService:
    return LogService(
        containers,
        engine,
        follow_per_container=settings.log_follow_per_container,
        follow_total=settings.log_follow_max,
    )


def containers(
    settings: Settings,
    database: Database,
    stores: Stores,
    compose: ComposeRunner,
    engine: Engine,
    images: ImageEngine,
    quotas: Quotas,
    recorder: JournalRecorder,
) -> ContainerService:
    return ContainerService(
        stores.containers,
        compose,
        engine,
        container_config(settings),
        heavy_limit=settings.max_concurrency,
        ports=port_allocator(settings, database),
        images=images,
        accounts=stores.accounts,
        quotas=quotas,
        recorder=recorder,
    )


def container_config(settings: Settings) -> ContainerConfig:
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
        idle_timeout=settings.idle_timeout,
        checkin=checkin_tokens(settings),
        max_replicas=settings.max_replicas,
    )


def checkin_tokens(settings: Settings) -> CheckinTokens:
    """Tokens keyed by the data folder's token secret (their own HMAC purpose); the URL
    from CHECKIN_BASE_URL, else derived from HOST, PORT and PUBLIC_HOST."""
    base = settings.checkin_base_url or derived_base_url(
        settings.host, settings.port, settings.public_host
    )
    return CheckinTokens(load_or_create_secret(settings.token_secret_file), base)


def timers(
    containers: ContainerService, repo: SqlContainerRepository
) -> tuple[ActivityTracker, TimerScheduler]:
    """Activity marks and the timers' scheduler, hooked into the container service."""
    activity = ActivityTracker(repo)
    scheduler = TimerScheduler(containers, activity)
    containers.activity = activity
    containers.timers = scheduler
    return activity, scheduler


def port_allocator(settings: Settings, database: Database) -> PortAllocator:
    """Host ports from PORT_RANGE; the bind probe only where the engine is this host."""
    local = not settings.docker_host or settings.docker_host.startswith("unix://")
    return PortAllocator(
        SqlPortAllocations(database),
        PortRange.parse(settings.port_range),
        probe=port_free if local else None,
    )


def authenticator(
    settings: Settings, stores: Stores, roles: RoleBook, hasher: PasswordHasher | None
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


def accounts(
    settings: Settings,
    stores: Stores,
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


def files(
    settings: Settings,
    containers: ContainerService,
    engine: Engine,
    fetcher: UrlFetcher | None,
    archives: ArchiveEngine | None = None,
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
    return FileService(
        containers,
        engine,
        tmp,
        settings.uid,
        settings.gid,
        limits,
        fetcher=fetcher,
        archives=archives,
    )


def terminals(
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
