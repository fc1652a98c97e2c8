"""The composition root: the one place where adapters are built and wired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.api import auth as auth_api
from dockyard.api import containers as containers_api
from dockyard.api import docs as docs_api
from dockyard.api import errors as api_errors
from dockyard.api import files as files_api
from dockyard.api import system as system_api
from dockyard.api.deps import Services
from dockyard.api.middleware import ActionLog, Metrics, RequestContextMiddleware
from dockyard.domain.archives import ArchiveLimits
from dockyard.domain.auth import Authenticator, PasswordHasher
from dockyard.domain.composition import Placement
from dockyard.domain.containers import ContainerConfig, ContainerService
from dockyard.domain.files import FileLimits, FileService
from dockyard.domain.protocols import ComposeRunner, Engine
from dockyard.domain.reconcile import Reconciler, StateFollower
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.repository import SqlAccountRepository, SqlContainerRepository

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
    )
    authenticator = Authenticator(
        account_repo,
        hasher or Argon2Hasher(),
        MemoryLoginLimiter(settings.login_failures_per_minute),
        settings.credential_cache_ttl,
    )
    reconciler = Reconciler(container_repo, account_repo, engine, container_service)
    follower = StateFollower(container_repo, engine, container_service)
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
    )
    services = Services(
        containers=container_service,
        files=file_service,
        auth=authenticator,
        reconciler=reconciler,
        compose_version=compose_version or "unknown",
        engine_version=engine.version,
        database_ping=database.ping,
    )
    action_log = ActionLog(settings.log_dir / "actions.jsonl")
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.migrate()
        app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
        await authenticator.bootstrap(settings.app_user, app_pass)
        await engine.ensure_network(settings.network_name)
        await reconciler.run_once(startup=True)
        tasks = [
            asyncio.create_task(reconciler.run_forever(settings.reconcile_interval)),
            asyncio.create_task(follower.run_forever()),
        ]
        log.info("dockyard.started", compose_version=services.compose_version)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
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
    app.add_middleware(
        RequestContextMiddleware, action_log=action_log, metrics=metrics, dev_mode=settings.dev_mode
    )
    return app
