"""build_services: every adapter and service built once, and wired."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.images import DockerImages
from dockyard.api.deps import Services
from dockyard.domain.access.audit import AuditTrail
from dockyard.domain.access.authn import PasswordHasher
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.reconcile import Reconciler, StateFollower
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.followers import EngineFeed, RemoteFollowers
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.engines.routing import (
    EngineParts,
    EngineRoutes,
    RoutingCompose,
    RoutingEngine,
)
from dockyard.domain.engines.service import EngineService
from dockyard.domain.idempotency import Idempotency
from dockyard.domain.images.ports import ImageEngine
from dockyard.domain.leases import LeaseKeeper
from dockyard.domain.observe.events import EventService
from dockyard.domain.ports import ComposeRunner, Engine, EngineEvent, UrlFetcher
from dockyard.domain.recording import JournalRecorder
from dockyard.runtime import clustering, imaging, parts
from dockyard.runtime.lifecycle import Runtime
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.accounts import SqlQuotaStore
from dockyard.store.idempotency import SqlIdempotencyRepository
from dockyard.store.journal import SqlAuditRepository, SqlEventRepository
from dockyard.store.leases import SqlLeaseRepository


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
        compose, compose_version = parts.compose(settings)
    local = engine or DockerEngine(settings.docker_host, settings.engine_timeout)
    database = parts.database(settings)
    stores = parts.Stores.on(database)
    roles = RoleBook(stores.roles)
    quotas = Quotas(SqlQuotaStore(database), exclusive=database.exclusive)
    events, audit, recorder = _journals(settings, database)
    images = images or _image_engine(settings, local)
    engines = clustering.engines(settings, database, local, recorder)
    # Every container's calls go to its engine (domain/engines/routing.py); the services
    # below hold the routing Engine and ComposeRunner as their one engine and runner.
    routes = clustering.routes(settings, stores, EngineParts(LOCAL, local, compose, False), engines)
    engine, compose = RoutingEngine(routes), RoutingCompose(routes)
    containers = parts.containers(
        settings, database, stores, compose, engine, images, quotas, recorder
    )
    activity, timers = parts.timers(containers, stores.containers)
    auth = parts.authenticator(settings, stores, roles, hasher)
    containers.pin = routes.pin
    made = imaging.everything(
        settings, database, stores, local, images, fetcher, containers, recorder
    )
    metrics = parts.metrics(settings, containers, engine)
    webhooks, deliverer = parts.webhooks(settings, database, stores, roles, recorder)
    events.add_listener(webhooks.on_events, urgent=webhooks.wants)
    terminals = parts.terminals(settings, containers, engine, auth)
    services = Services(
        containers=containers,
        files=parts.files(settings, containers, engine, fetcher, archives=engine),
        logs=parts.logs(settings, containers, engine),
        metrics=metrics,
        events=events,
        terminals=terminals,
        auth=auth,
        reconciler=Reconciler(stores.containers, stores.accounts, engine, containers, recorder),
        compose_version=compose_version or "unknown",
        engine_version=local.version,
        database_ping=database.ping,
        accounts=parts.accounts(settings, stores, auth, quotas, recorder),
        quotas=quotas,
        audit=audit,
        idempotency=Idempotency(SqlIdempotencyRepository(database)),
        images=made.images,
        registries=made.registries,
        jobs=made.jobs,
        builds=made.builds,
        pulls=made.pulls,
        webhooks=webhooks,
        webhookkeys=made.webhookkeys,
        hub=made.hub,
        engines=engines,
    )
    containers.placer = services.engines  # creates are placed by the registry
    containers.exclusive = database.exclusive  # its lock in every process
    containers.host_access_on = services.engines.allows_host_access
    listeners = [events.engine_event, metrics.engine_event, timers.engine_event]
    follower = StateFollower(stores.containers, engine, containers, listeners=listeners)
    followers = _remote_followers(
        settings, stores, routes, engines, containers, recorder, listeners
    )
    runtime = Runtime(
        settings,
        services,
        database,
        engine,
        roles,
        follower,
        images,
        deliverer,
        timers=timers,
        activity=activity,
        followers=followers,
    )
    services.duties = runtime.duties_held
    if database.shared:  # several processes may share it: leases say who runs what
        repo = SqlLeaseRepository(database)
        keeper = LeaseKeeper(repo, made.jobs.instance, runtime.duties(), ttl=settings.lease_ttl)
        runtime.leases = keeper
    return runtime


def _remote_followers(
    settings: Settings,
    stores: parts.Stores,
    routes: EngineRoutes,
    engines: EngineService,
    containers: ContainerService,
    recorder: JournalRecorder,
    listeners: Sequence[Callable[[EngineEvent], None]],
) -> RemoteFollowers:
    """Each remote engine's reconcile and event follower (domain/engines/followers.py)."""

    def per_engine(feed: EngineFeed) -> tuple[Reconciler, StateFollower]:
        one = feed.engine_id
        reconciler = Reconciler(
            stores.containers, stores.accounts, feed, containers, recorder, engine_id=one
        )
        follower = StateFollower(
            stores.containers,
            feed,
            containers,
            listeners=listeners,
            engine_id=one,
            on_connected=partial(reconciler.run_once, startup=False),
        )
        return reconciler, follower

    return RemoteFollowers(
        routes,
        engines.remote_ids,
        per_engine,
        interval=settings.engine_poll_interval,
        reconcile_interval=settings.reconcile_interval,
    )


def _journals(
    settings: Settings, database: Database
) -> tuple[EventService, AuditTrail, JournalRecorder]:
    """The events and the audit trail, and the one recorder that writes both."""
    events = EventService(
        SqlEventRepository(database),
        max_events=settings.events_max,
        follow_max=settings.events_follow_max,
    )
    audit = AuditTrail(SqlAuditRepository(database), commit_wait=settings.sqlite_busy_timeout)
    return events, audit, JournalRecorder(events, audit)


def _image_engine(settings: Settings, engine: Engine) -> ImageEngine:
    """The engine's own session (with a fake engine in tests: a lazy one of its own)."""
    docker = engine if isinstance(engine, DockerEngine) else None
    docker = docker or DockerEngine(settings.docker_host, settings.engine_timeout)
    return DockerImages(docker, idle=settings.registry_idle_timeout)
