"""The builders of the engines' part: the registry with its watcher, and the one
routing point that sends each container's calls to its engine."""

from __future__ import annotations

import shutil
from pathlib import Path

from dockyard.adapters.compose import CliComposeRunner, find_compose_binary
from dockyard.adapters.crypto import AesGcmBox
from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.probe import DockerProbe, VersionProbe
from dockyard.adapters.engine.remote import RemoteEngines
from dockyard.adapters.secrets import load_or_create_secret
from dockyard.domain.engines.models import LOCAL, EngineRecord, TlsFiles
from dockyard.domain.engines.routing import EngineParts, EngineRoutes
from dockyard.domain.engines.service import EngineConfig, EngineService
from dockyard.domain.engines.watcher import EngineProbe, EngineWatcher
from dockyard.domain.models import Resources
from dockyard.domain.ports import Engine
from dockyard.domain.recording import JournalRecorder
from dockyard.runtime import parts
from dockyard.runtime.parts import compose_runner
from dockyard.settings import Settings
from dockyard.store import Database
from dockyard.store.engines import SqlEngineRepository


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
    return EngineService(
        SqlEngineRepository(database, cache=not database.shared),
        box,
        watcher,
        config,
        recorder,
        database.exclusive,
    )


def routes(
    settings: Settings,
    stores: parts.Stores,
    local: EngineParts,
    engines: EngineService,
) -> EngineRoutes:
    """The one routing point (domain/engines/routing.py): each container's calls go to
    the engine its record names; another engine's clients are built on first use, with
    a Compose runner of their own (that engine's DOCKER_HOST and TLS files)."""
    binary: list[Path] = []

    def compose_for(env: dict[str, str]) -> CliComposeRunner:
        if not binary:  # found once, when the first other engine is used
            binary.append(find_compose_binary(settings.compose_bin)[0])
        # /app is the project's named volume there: `down` removes it.
        return compose_runner(settings, binary[0], docker_host=None, env=env, remove_volumes=True)

    docker_bin = shutil.which("docker") or "docker"  # swarm engines' `docker stack`

    def docker_for(env: dict[str, str]) -> CliComposeRunner:
        return compose_runner(settings, Path(docker_bin), docker_host=None, env=env)

    async def where(cuid: str) -> str | None:
        record = await stores.containers.get(cuid)
        return None if record is None else record.engine

    factory = RemoteEngines(
        engines.connection,
        compose_for,
        timeout=settings.engine_timeout,
        network=settings.network_name,
        uid=settings.uid,
        gid=settings.gid,
        docker=docker_for,
        docker_bin=docker_bin,
    )
    routes = EngineRoutes(local, where=where, factory=factory, reachable=engines.reachable)
    engines.on_change = routes.drop
    engines.has_image = routes.image_exists
    return routes
