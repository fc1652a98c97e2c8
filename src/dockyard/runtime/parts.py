"""The builders build_services calls, one per part of the service."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.crypto import AesGcmBox
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.cgroups import CgroupReader
from dockyard.adapters.engine.images import DockerImages
from dockyard.adapters.engine.probe import DockerProbe, VersionProbe
from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.git import CliGitFetcher
from dockyard.adapters.hostports import port_free
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.adapters.webhooks import HttpWebhookSender
from dockyard.api.schemas.hub import bound_build
from dockyard.domain.access.accounts import AccountService
from dockyard.domain.access.authn import Authenticator, PasswordHasher
from dockyard.domain.access.credentials import TokenSigner
from dockyard.domain.access.permissions import Permission
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.automation.activity import ActivityTracker
from dockyard.domain.automation.checkin import CheckinTokens, derived_base_url
from dockyard.domain.automation.delivery import Deliverer
from dockyard.domain.automation.hooks import DeliveryLimits
from dockyard.domain.automation.hub import HubService
from dockyard.domain.automation.hubkeys import WebhookKeyService
from dockyard.domain.automation.timers import TimerScheduler
from dockyard.domain.automation.webhooks import WebhookService
from dockyard.domain.containers.compose_doc import Placement
from dockyard.domain.containers.ports import PortAllocator, PortRange
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.service import ContainerConfig, ContainerService
from dockyard.domain.engines.models import LOCAL, EngineRecord, TlsFiles
from dockyard.domain.engines.service import EngineConfig, EngineService
from dockyard.domain.engines.watcher import EngineProbe, EngineWatcher
from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.service import FileLimits, FileService
from dockyard.domain.images.builds import BuildConfig, BuildService
from dockyard.domain.images.contexts import ContextBuilder, ContextLimits
from dockyard.domain.images.images import ImageService
from dockyard.domain.images.joblogs import JobLogs
from dockyard.domain.images.jobs import JobService, QueueLimits
from dockyard.domain.images.ports import Credentials, ImageEngine
from dockyard.domain.images.pulls import PullService
from dockyard.domain.images.registries import RegistryService
from dockyard.domain.models import Resources, memory_bytes
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
from dockyard.store.engines import SqlEngineRepository
from dockyard.store.jobs import SqlJobRepository
from dockyard.store.ports import SqlPortAllocations
from dockyard.store.registries import SqlRegistryRepository
from dockyard.store.webhookkeys import SqlWebhookKeyRepository
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
            SqlContainerRepository(database),
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


HUB_DELIVERIES_PER_MINUTE = 60  # per webhook key


def hub(
    settings: Settings,
    database: Database,
    parts: tuple[JobService, BuildService, PullService],
    containers: ContainerService,
    recorder: JournalRecorder,
) -> tuple[WebhookKeyService, HubService]:
    """Webhook keys and hub deliveries: a key's URL on the base a workload's check-in
    uses (CHECKIN_BASE_URL, else PUBLIC_HOST and PORT); unknown keys counted per source
    address like failed logins."""
    base = settings.checkin_base_url or derived_base_url(
        settings.host, settings.port, settings.public_host
    )
    repo = SqlWebhookKeyRepository(database)
    keys = WebhookKeyService(repo, base, recorder=recorder)
    jobs, builds, pulls = parts
    service = HubService(
        repo,
        jobs,
        pulls,
        builds,
        containers,
        bound_build,
        failures=MemoryLoginLimiter(settings.login_failures_per_minute),
        per_key=MemoryLoginLimiter(HUB_DELIVERIES_PER_MINUTE),
        recorder=recorder,
    )
    return keys, service


def builds(
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


def images(
    settings: Settings,
    database: Database,
    stores: Stores,
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


def engines(
    settings: Settings, database: Database, engine: Engine, recorder: JournalRecorder
) -> EngineService:
    """The registry of engines and its watcher: each engine polled through a client of its
    own (a fake local engine in tests: through that engine); TLS files sealed with a key
    derived (HKDF, its own purpose) from the data folder's ``registry-secret``."""
    timeout = settings.engine_poll_timeout

    def probe(record: EngineRecord, tls: TlsFiles | None) -> EngineProbe:
        if record.id == LOCAL and not isinstance(engine, DockerEngine):
            return VersionProbe(engine)
        return DockerProbe(record, tls, timeout)

    watcher = EngineWatcher(
        probe, interval=settings.engine_poll_interval, timeout=timeout, recorder=recorder
    )
    secret = load_or_create_secret(settings.registry_secret_file)
    box = AesGcmBox.from_secret(secret, purpose=b"dockyard engine tls files")
    config = EngineConfig(
        local_addr=settings.docker_host,
        allow_plain_tcp=settings.engines_allow_plain_tcp,
        default_resources=Resources(
            cpus=settings.default_cpus, memory=settings.default_memory, pids=None
        ),
    )
    return EngineService(SqlEngineRepository(database), box, watcher, config, recorder)


def database(settings: Settings) -> Database:
    return Database(
        settings.async_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        busy_timeout=settings.sqlite_busy_timeout,
    )


def compose(settings: Settings) -> tuple[ComposeRunner, str]:
    binary, version = find_compose_binary(settings.compose_bin)
    runner = CliComposeRunner(
        binary,
        docker_host=settings.docker_host,
        timeout=settings.compose_timeout,
        nice=settings.compose_nice,
        stop_timeout=settings.stop_timeout,
    )
    return runner, version


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
