"""The one routing point between containers and the engines they live on (issue 12).

Every service keeps its one ``Engine`` and one ``ComposeRunner``: ``RoutingEngine`` and
``RoutingCompose`` implement those ports by forwarding each call about a container to
the engine its record names, through ``EngineRoutes``. The local engine is a dict
lookup (cuid -> engine id, cached; a record is read once per cuid, and a create pins its
choice so that not even that read happens); another engine's clients (its own Engine API
client and a Compose runner with its ``DOCKER_HOST``) are built on first use by a
``PartsFactory`` (adapters/engine/remote.py) and kept until the engine changes.

A call for a container on an engine the watcher reads unreachable fails at once with
503 ``ENGINE_UNREACHABLE`` and ``Retry-After``, without waiting out a connect timeout.
Calls that name no container (versions, images, the network, the managed list, the
event stream) are the local engine's: per-engine followers and reconciles use the
engine's own parts (``parts_of``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dockyard.domain.engines.models import LOCAL
from dockyard.domain.models import LiveState
from dockyard.domain.ports import (
    ByteStream,
    Change,
    ComposeRunner,
    ContainerProcess,
    Engine,
    EngineEvent,
    LogQuery,
    ManagedContainer,
    PathStat,
    ReplicaState,
    ResourceSample,
)
from dockyard.domain.terminal.framing import TerminalStream
from dockyard.errors import EngineError, EngineUnavailableError

_KNOWN_IDS = 10_000  # container ids remembered for stats_once (metrics), newest kept


TarSource = Path | bytes | AsyncIterator[bytes]  # a tar: a file, bytes, or a stream


class ArchiveEngine(Protocol):
    """What a remote ``/app`` needs beyond ``Engine``: a tar extracted into a path."""

    async def put_archive(self, cuid: str, path: str, tar: TarSource) -> None: ...


@dataclass(frozen=True)
class EngineParts:
    """One engine's own clients. ``remote``: its containers are not this host's (no
    host folders, no host pids)."""

    engine_id: str
    engine: Engine
    compose: ComposeRunner
    remote: bool


class PartsFactory(Protocol):
    """Builds an engine's clients from its record (raises ``EngineUnavailableError``
    for an engine that is not in the registry)."""

    async def open(self, engine_id: str) -> EngineParts: ...
    async def close(self, parts: EngineParts) -> None: ...


Where = Callable[[str], Awaitable[str | None]]  # cuid -> the engine its record names
Reachable = Callable[[str], bool | None]  # the watcher's word (None: not polled yet)


class EngineRoutes:
    """cuid -> engine id -> that engine's ``EngineParts``."""

    def __init__(
        self,
        local: EngineParts,
        *,
        where: Where,
        factory: PartsFactory | None = None,
        reachable: Reachable | None = None,
    ) -> None:
        self.local = local
        self._where = where
        self._factory = factory
        self._reachable = reachable or (lambda _engine_id: True)
        self._on: dict[str, str] = {}
        self._parts: dict[str, EngineParts] = {LOCAL: local}
        self._opening = asyncio.Lock()

    def pin(self, cuid: str, engine_id: str) -> None:
        """A create's placement: the container lives on ``engine_id`` from now on."""
        self._on[cuid] = engine_id

    async def engine_of(self, cuid: str) -> str:
        found = self._on.get(cuid)
        if found is None:
            stored = await self._where(cuid)
            if stored is None:
                return LOCAL  # no record (yet, or any more): nothing is cached
            found = self._on[cuid] = stored
        return found

    async def parts(self, cuid: str) -> EngineParts:
        engine_id = self._on.get(cuid) or await self.engine_of(cuid)
        if engine_id == LOCAL:
            return self.local
        return await self.parts_of(engine_id)

    async def parts_of(self, engine_id: str) -> EngineParts:
        if engine_id == LOCAL:
            return self.local
        if self._reachable(engine_id) is False:
            raise EngineUnavailableError(
                f"engine {engine_id} cannot be reached; retry when it is back",
                code="ENGINE_UNREACHABLE",
                details={"engine": engine_id},
            )
        parts = self._parts.get(engine_id)
        if parts is not None:
            return parts
        if self._factory is None:
            raise EngineUnavailableError(
                f"engine {engine_id} has no client here", code="ENGINE_UNKNOWN"
            )
        async with self._opening:
            parts = self._parts.get(engine_id)
            if parts is None:
                parts = self._parts[engine_id] = await self._factory.open(engine_id)
        return parts

    async def image_exists(self, engine_id: str, ref: str) -> bool:
        """Whether that engine has the image (a create placed there is checked so)."""
        return await (await self.parts_of(engine_id)).engine.image_exists(ref)

    def opened(self) -> list[EngineParts]:
        """The other engines' parts built so far."""
        return [p for engine_id, p in self._parts.items() if engine_id != LOCAL]

    async def drop(self, engine_id: str) -> None:
        """Forget an engine's clients (it was removed or changed): built again on use."""
        parts = self._parts.pop(engine_id, None) if engine_id != LOCAL else None
        if parts is not None and self._factory is not None:
            await self._factory.close(parts)

    async def close(self) -> None:
        for engine_id in [e for e in self._parts if e != LOCAL]:
            await self.drop(engine_id)


class RoutingEngine:
    """``Engine`` that forwards each container's calls to the engine it lives on."""

    def __init__(self, routes: EngineRoutes) -> None:
        self.routes = routes
        self._local = routes.local.engine
        self._ids: dict[str, Engine] = {}  # container id -> engine (stats_once)

    async def _on(self, cuid: str) -> Engine:
        return (await self.routes.parts(cuid)).engine

    # -- about one container: routed -------------------------------------------------

    async def inspect(self, cuid: str) -> LiveState | None:
        return await (await self._on(cuid)).inspect(cuid)

    async def changes(self, cuid: str) -> list[Change]:
        return await (await self._on(cuid)).changes(cuid)

    async def archive_stat(self, cuid: str, path: str) -> PathStat | None:
        return await (await self._on(cuid)).archive_stat(cuid, path)

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        await (await self._on(cuid)).archive_to(cuid, path, dest, limit)

    async def put_archive(self, cuid: str, path: str, tar: TarSource) -> None:
        engine = await self._on(cuid)
        put = getattr(engine, "put_archive", None)  # DockerEngine's; not every Engine has it
        if put is None:
            raise EngineError("this engine takes no archives", code="ENGINE_NO_ARCHIVES")
        await put(cuid, path, tar)

    async def open_exec(
        self,
        cuid: str,
        cmd: list[str],
        *,
        tty: bool,
        cols: int,
        rows: int,
        user: str,
        replica: int = 1,
    ) -> TerminalStream:
        engine = await self._on(cuid)
        return await engine.open_exec(
            cuid, cmd, tty=tty, cols=cols, rows=rows, user=user, replica=replica
        )

    async def open_attach(self, cuid: str, *, replica: int = 1) -> TerminalStream:
        return await (await self._on(cuid)).open_attach(cuid, replica=replica)

    async def recent_output(self, cuid: str, max_bytes: int, *, replica: int = 1) -> bytes:
        return await (await self._on(cuid)).recent_output(cuid, max_bytes, replica=replica)

    async def list_replicas(self, cuid: str) -> list[ReplicaState]:
        return await (await self._on(cuid)).list_replicas(cuid)

    async def replicas_of_many(self, cuids: Collection[str]) -> dict[str, list[ReplicaState]]:
        """One call per engine the containers live on; an unreachable engine's containers
        are left out (their replicas then read ``missing``; a list never fails for it)."""
        groups: dict[str, tuple[Engine, list[str]]] = {}
        for cuid in cuids:
            try:
                parts = await self.routes.parts(cuid)
            except EngineUnavailableError:
                continue
            groups.setdefault(parts.engine_id, (parts.engine, []))[1].append(cuid)
        found: dict[str, list[ReplicaState]] = {}
        for engine, some in groups.values():
            try:
                found.update(await engine.replicas_of_many(some))
            except EngineUnavailableError:
                continue
        return found

    async def process(self, cuid: str, *, replica: int = 1) -> ContainerProcess | None:
        parts = await self.routes.parts(cuid)
        proc = await parts.engine.process(cuid, replica=replica)
        if proc is None:
            return None
        if parts.remote:
            # Another host's pid means nothing here: no cgroup reading, engine stats.
            proc = dataclasses.replace(proc, pid=0)
        if len(self._ids) >= _KNOWN_IDS:
            self._ids.pop(next(iter(self._ids)))
        self._ids[proc.container_id] = parts.engine
        return proc

    async def stats_once(self, container_id: str) -> ResourceSample | None:
        return await self._ids.get(container_id, self._local).stats_once(container_id)

    async def open_logs(self, cuid: str, query: LogQuery, *, replica: int = 1) -> ByteStream:
        return await (await self._on(cuid)).open_logs(cuid, query, replica=replica)

    # -- about no container: the local engine's ---------------------------------------

    async def list_managed(self) -> list[ManagedContainer]:
        return await self._local.list_managed()

    async def image_exists(self, ref: str) -> bool:
        return await self._local.image_exists(ref)

    async def ensure_network(self, name: str) -> None:
        await self._local.ensure_network(name)

    async def version(self) -> str:
        return await self._local.version()

    def stream_events(self) -> AsyncIterator[EngineEvent]:
        return self._local.stream_events()

    async def close(self) -> None:
        await self.routes.close()
        await self._local.close()


class RoutingCompose:
    """``ComposeRunner`` that runs each project's Compose against its engine."""

    def __init__(self, routes: EngineRoutes) -> None:
        self.routes = routes
        self._local = routes.local.compose

    async def _on(self, project: str) -> ComposeRunner:
        return (await self.routes.parts(project)).compose

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None:
        # The file is this host's whatever the engine; its runner writes it all the same.
        name = document.get("name")
        runner = await self._on(name) if isinstance(name, str) else self._local
        await runner.write(project_dir, document)

    async def create(self, project: str, project_dir: Path) -> None:
        await (await self._on(project)).create(project, project_dir)

    async def up(self, project: str, project_dir: Path) -> None:
        await (await self._on(project)).up(project, project_dir)

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        await (await self._on(project)).action(project, project_dir, verb)

    async def down(self, project: str, project_dir: Path) -> None:
        await (await self._on(project)).down(project, project_dir)

    async def version(self) -> str:
        return await self._local.version()
