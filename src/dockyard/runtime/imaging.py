"""The builders of images, builds and the hub redeploy (build_services calls them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.adapters.crypto import AesGcmBox
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.images import DockerImages
from dockyard.adapters.fetch import HttpUrlFetcher, parse_networks
from dockyard.adapters.git import CliGitFetcher
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.adapters.security import MemoryLoginLimiter
from dockyard.api.schemas.hub import bound_build
from dockyard.domain.automation.checkin import derived_base_url
from dockyard.domain.automation.hub import HubService
from dockyard.domain.automation.hubkeys import WebhookKeyService
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.images.builds import BuildConfig, BuildService
from dockyard.domain.images.contexts import ContextBuilder, ContextLimits
from dockyard.domain.images.images import ImageService
from dockyard.domain.images.joblogs import JobLogs
from dockyard.domain.images.jobs import JobService, QueueLimits
from dockyard.domain.images.ports import Credentials, ImageEngine
from dockyard.domain.images.pulls import PullService
from dockyard.domain.images.registries import RegistryService
from dockyard.domain.models import memory_bytes
from dockyard.domain.ports import Engine, UrlFetcher
from dockyard.domain.recording import JournalRecorder
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.jobs import SqlJobRepository
from dockyard.store.registries import SqlRegistryRepository
from dockyard.store.webhookkeys import SqlWebhookKeyRepository

if TYPE_CHECKING:
    from dockyard.runtime.parts import Stores

HUB_DELIVERIES_PER_MINUTE = 60  # per webhook key


@dataclass(frozen=True)
class ImageParts:
    images: ImageService
    registries: RegistryService
    jobs: JobService
    builds: BuildService
    pulls: PullService
    webhookkeys: WebhookKeyService
    hub: HubService


def everything(
    settings: Settings,
    database: Database,
    stores: Stores,
    engine: Engine,
    images: ImageEngine,
    fetcher: UrlFetcher | None,
    containers: ContainerService,
    recorder: JournalRecorder,
) -> ImageParts:
    """Images, registries, the job queue with builds and pulls, and the hub redeploy."""
    image_service, registries = _images(settings, database, stores, engine, images, recorder)
    jobs, builds, pulls = _builds(settings, database, images, registries, fetcher, recorder)
    webhookkeys, hub = _hub(settings, database, (jobs, builds, pulls), containers, recorder)
    return ImageParts(image_service, registries, jobs, builds, pulls, webhookkeys, hub)


def _hub(
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
