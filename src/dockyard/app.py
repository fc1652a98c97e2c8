"""The composition root: the one place where adapters are built and wired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.cgroups import CgroupReader
from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.api import accounts as accounts_api
from dockyard.api import audit as audit_api
from dockyard.api import auth as auth_api
from dockyard.api import containers as containers_api
from dockyard.api import docs as docs_api
from dockyard.api import errors as api_errors
from dockyard.api import files as files_api
from dockyard.api import observe as observe_api
from dockyard.api import roles as roles_api
from dockyard.api import servicekeys as servicekeys_api
from dockyard.api import system as system_api
from dockyard.api import terminal as terminal_api
from dockyard.api.deps import Services
from dockyard.api.middleware import ActionLog, Metrics, RequestContextMiddleware
from dockyard.domain.access.accounts import AccountService
from dockyard.domain.access.audit import AuditTrail
from dockyard.domain.access.authn import Authenticator, PasswordHasher
from dockyard.domain.access.credentials import TokenSigner
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.containers.compose_doc import Placement
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.reconcile import Reconciler, StateFollower
from dockyard.domain.containers.service import ContainerConfig, ContainerService
from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.service import FileLimits, FileService
from dockyard.domain.observe.events import EventService
from dockyard.domain.observe.logs import LogService
from dockyard.domain.observe.metrics import MetricsService
from dockyard.domain.ports import ComposeRunner, Engine, UrlFetcher
from dockyard.domain.terminal.framing import SessionRegistry
from dockyard.domain.terminal.service import TerminalService
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.repository import (
    SqlAccountRepository,
    SqlAuditRepository,
    SqlContainerRepository,
    SqlEventRepository,
    SqlQuotaStore,
    SqlRoleRepository,
    SqlServiceKeyRepository,
    SqlTokenRepository,
)

log = structlog.get_logger("dockyard")


async def preflight(settings: Settings) -> None:
    """What start-up needs, checked before the server binds, so that a failure is one
    clear line: the database migrates, the admin can be bootstrapped, the engine answers."""
    database = Database(settings.async_database_url)
    engine = DockerEngine(settings.docker_host, settings.engine_timeout)
    try:
        await database.migrate()
        auth = Authenticator(
            SqlAccountRepository(database),
            Argon2Hasher(),
            MemoryLoginLimiter(1),
            cache_ttl=0,
        )
        app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
        await auth.bootstrap(settings.app_user, app_pass)
        await engine.version()
    finally:
        await engine.close()
        await database.close()


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    compose: ComposeRunner | None = None,
    compose_version: str | None = None,
    hasher: PasswordHasher | None = None,
    fetcher: UrlFetcher | None = None,
) -> FastAPI:
    """Build the application; tests pass fakes for the engine and Compose."""
    settings.containers_dir.mkdir(parents=True, exist_ok=True)
    if compose is None:
        binary, compose_version = find_compose_binary(settings.compose_bin)
        compose = CliComposeRunner(
            binary,
            docker_host=settings.docker_host,
            timeout=settings.compose_timeout,
            stop_timeout=settings.stop_timeout,
        )
    engine = engine or DockerEngine(settings.docker_host, settings.engine_timeout)
    database = Database(settings.async_database_url)
    container_repo = SqlContainerRepository(database)
    account_repo = SqlAccountRepository(database)
    quotas = Quotas(SqlQuotaStore(database))
    key_repo = SqlServiceKeyRepository(database)
    token_repo = SqlTokenRepository(database)
    role_repo = SqlRoleRepository(database)
    role_book = RoleBook(role_repo)
    audit_trail = AuditTrail(SqlAuditRepository(database))
    placement = Placement(
        network=settings.network_name,
        user=settings.default_user_uid,
        stop_timeout=settings.stop_timeout,
    )
    container_service = ContainerService(
        container_repo,
        compose,
        engine,
        ContainerConfig(settings.containers_dir, placement, settings.uid, settings.gid),
        heavy_limit=settings.max_concurrency,
        quotas=quotas,
    )
    authenticator = Authenticator(
        account_repo,
        hasher or Argon2Hasher(),
        MemoryLoginLimiter(settings.login_failures_per_minute),
        settings.credential_cache_ttl,
        roles=role_book,
        keys=key_repo,
        tokens=token_repo,
        signer=TokenSigner(load_or_create_secret(settings.token_secret_file)),
    )
    account_service = AccountService(
        account_repo,
        role_repo,
        key_repo,
        token_repo,
        authenticator,
        quotas,
        token_ttl=settings.token_ttl,
        token_max_ttl=settings.token_max_ttl,
    )
    reconciler = Reconciler(container_repo, account_repo, engine, container_service)
    events = EventService(
        SqlEventRepository(database),
        max_events=settings.events_max,
        follow_max=settings.events_follow_max,
    )
    local_engine = not settings.docker_host or settings.docker_host.startswith("unix://")
    container_metrics = MetricsService(
        container_service,
        engine,
        CgroupReader() if local_engine else None,
        interval=settings.metrics_interval,
        idle=settings.metrics_idle,
    )
    logs = LogService(
        container_service,
        engine,
        follow_per_container=settings.log_follow_per_container,
        follow_total=settings.log_follow_max,
    )
    follower = StateFollower(
        container_repo,
        engine,
        container_service,
        listeners=[events.engine_event, container_metrics.engine_event],
    )
    file_limits = FileLimits(
        max_upload_bytes=settings.upload_max_bytes,
        max_download_zip_bytes=settings.download_zip_max_bytes,
        archive=ArchiveLimits(
            max_entries=settings.archive_max_entries,
            max_unpacked_bytes=settings.unpacked_max_bytes,
            max_ratio=settings.archive_max_ratio,
        ),
    )
    file_service = FileService(
        container_service,
        engine,
        settings.data_dir / "tmp",
        settings.uid,
        settings.gid,
        file_limits,
        fetcher=fetcher
        or HttpUrlFetcher(
            max_bytes=settings.fetch_max_bytes,
            timeout=settings.fetch_timeout,
            allow_nets=parse_networks(settings.fetch_allow_nets),
        ),
    )
    terminals = TerminalService(
        container_service,
        engine,
        SessionRegistry(
            settings.terminal_sessions_per_user, settings.terminal_sessions_per_container
        ),
        user=settings.default_user_uid,
    )

    def end_terminals(username: str) -> None:
        # Revocation hook (docs/architecture.md): a revoked principal's sessions end now.
        terminals.registry.end_user(
            username, "credentials_revoked", "the credentials of this session were revoked"
        )

    authenticator.add_revocation_listener(end_terminals)
    services = Services(
        containers=container_service,
        files=file_service,
        logs=logs,
        metrics=container_metrics,
        events=events,
        terminals=terminals,
        auth=authenticator,
        reconciler=reconciler,
        compose_version=compose_version or "unknown",
        engine_version=engine.version,
        database_ping=database.ping,
        accounts=account_service,
        quotas=quotas,
        audit=audit_trail,
    )
    action_log = ActionLog(settings.log_dir / "actions.jsonl")
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.migrate()
        app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
        await authenticator.bootstrap(settings.app_user, app_pass)
        await role_book.load()
        await authenticator.purge_expired_tokens()
        await engine.ensure_network(settings.network_name)
        await reconciler.run_once(startup=True)
        tasks = [
            asyncio.create_task(reconciler.run_forever(settings.reconcile_interval)),
            asyncio.create_task(follower.run_forever()),
            asyncio.create_task(audit_trail.run()),
            asyncio.create_task(events.run_forever()),
            asyncio.create_task(container_metrics.run_forever()),
        ]
        log.info("dockyard.started", compose_version=services.compose_version)
        try:
            yield
        finally:
            await terminals.shutdown()
            await audit_trail.flush(wait=5)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            await audit_trail.drain()
            await authenticator.close()
            await engine.close()
            await database.close()
            action_log.close()

    app = FastAPI(
        title="Dockyard",
        version="0.1.0",
        summary="Run Docker containers for API clients, safely.",
        lifespan=lifespan,
        openapi_url=None,  # served by api/docs.py, behind credentials
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = metrics
    app.state.follower = follower
    api_errors.install(app)
    app.include_router(system_api.router)
    app.include_router(auth_api.router)
    app.include_router(docs_api.router)
    app.include_router(containers_api.router)
    app.include_router(files_api.router)
    app.include_router(observe_api.router)
    app.include_router(terminal_api.router)
    app.include_router(accounts_api.router)
    app.include_router(roles_api.router)
    app.include_router(servicekeys_api.router)
    app.include_router(audit_api.router)
    app.add_middleware(
        RequestContextMiddleware,
        action_log=action_log,
        metrics=metrics,
        dev_mode=settings.dev_mode,
        audit=audit_trail.record,
    )
    return app
