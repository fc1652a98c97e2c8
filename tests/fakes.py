"""Test doubles for unit tests: an in-memory engine and a Compose that records calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.adapters.compose.failures import classify
from dockyard.domain.models import LiveState, Status
from dockyard.domain.ports import (
    Change,
    ContainerProcess,
    EngineEvent,
    LogQuery,
    ManagedContainer,
    PathStat,
    ReplicaState,
    ResourceSample,
)
from dockyard.errors import ComposeError, NotFoundError

_VERB_STATUS = {
    "create": Status.CREATED,
    "up": Status.RUNNING,
    "start": Status.RUNNING,
    "stop": Status.EXITED,
    "restart": Status.RUNNING,
    "pause": Status.PAUSED,
    "unpause": Status.RUNNING,
    "kill": Status.EXITED,
    "recreate": Status.RUNNING,
    "recreate-stopped": Status.CREATED,
}


class FakeEngine:
    def __init__(self, images: tuple[str, ...] = ("busybox:test",)) -> None:
        self.images = set(images)
        self.containers: dict[str, ManagedContainer] = {}
        self.inspects = 0
        self.logs: dict[str, list[bytes]] = {}
        self.log_queries: list[LogQuery] = []
        self.hold_follow = False
        self.stats_calls: dict[str, int] = {}
        self.changed: dict[str, list[Change]] = {}
        self.stats: dict[tuple[str, str], PathStat] = {}
        self.replica_counts: dict[str, int] = {}
        self.replicas_down: set[int] = set()
        self.replica_list_calls = 0

    async def inspect(self, cuid: str) -> LiveState | None:
        self.inspects += 1
        found = self.containers.get(cuid)
        return LiveState(status=found.status, exit_code=0) if found else None

    async def list_managed(self) -> list[ManagedContainer]:
        return list(self.containers.values())

    async def image_exists(self, ref: str) -> bool:
        return ref in self.images

    async def ensure_network(self, name: str) -> None:
        return None

    async def version(self) -> str:
        return "fake-engine"

    async def stream_events(self) -> AsyncIterator[EngineEvent]:
        await asyncio.Event().wait()
        yield EngineEvent(cuid="", action="")  # pragma: no cover

    async def close(self) -> None:
        return None

    async def changes(self, cuid: str) -> list[Change]:
        return list(self.changed.get(cuid, []))

    async def archive_stat(self, cuid: str, path: str) -> PathStat | None:
        return self.stats.get((cuid, path))

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        raise NotFoundError(f"{path} does not exist", code="PATH_NOT_FOUND")

    # -- observation (issue 4): logs from ``self.logs``, stats that tick -------------

    async def replicas_of_many(self, cuids: Collection[str]) -> dict[str, list[ReplicaState]]:
        self.replica_list_calls += 1
        return {cuid: [r for r in await self.list_replicas(cuid) if r.index > 1] for cuid in cuids}

    async def list_replicas(self, cuid: str) -> list[ReplicaState]:
        """The replicas of the project's last applied document, all in the container's
        state (``replicas_down`` lists indexes the engine has lost)."""
        found = self.containers.get(cuid)
        if found is None:
            return []
        count = self.replica_counts.get(cuid, 1)
        return [
            ReplicaState(index, found.status)
            for index in range(1, count + 1)
            if index not in self.replicas_down
        ]

    async def process(self, cuid: str, *, replica: int = 1) -> ContainerProcess | None:
        found = self.containers.get(cuid)
        if found is None:
            return None
        return ContainerProcess(container_id=f"id-{cuid}", pid=0, status=found.status, tty=True)

    async def stats_once(self, container_id: str) -> ResourceSample | None:
        """Half a core busy, 10 MiB used: the clock moves 1 s and the CPU 0.5 s a call."""
        cuid = container_id.removeprefix("id-")
        found = self.containers.get(cuid)
        if found is None or found.status not in (Status.RUNNING, Status.PAUSED):
            return None
        self.stats_calls[cuid] = calls = self.stats_calls.get(cuid, 0) + 1
        return ResourceSample(
            source="engine",
            clock_ns=calls * 1_000_000_000,
            at=datetime.now(UTC),
            cpu_ns=calls * 500_000_000,
            online_cpus=2,
            memory_used=10 * 1024 * 1024,
            memory_limit=64 * 1024 * 1024,
            net_rx=1,
            net_tx=2,
            blk_read=3,
            blk_write=4,
            pids=5,
        )

    async def open_logs(self, cuid: str, query: LogQuery, *, replica: int = 1) -> FakeLogStream:
        if cuid not in self.containers:
            raise NotFoundError("the container is gone from the engine", code="CONTAINER_MISSING")
        self.log_queries.append(query)
        return FakeLogStream(list(self.logs.get(cuid, [])), hold=query.follow and self.hold_follow)


class FakeLogStream:
    """Yields its chunks; with ``hold`` it then waits (a follow of a quiet container)."""

    def __init__(self, chunks: list[bytes], *, hold: bool) -> None:
        self.chunks = chunks
        self.hold = hold
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hold:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


class FakeCompose:
    """Applies verbs to a FakeEngine; ``fail_next`` makes the next call fail."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.calls: list[tuple[str, str]] = []
        self.documents: dict[str, dict[str, Any]] = {}
        self.fail_next: str | None = None

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None:
        self.documents[document["name"]] = document

    async def _verb(self, project: str, verb: str) -> None:
        self.calls.append((project, verb))
        if self.fail_next:
            stderr, self.fail_next = self.fail_next, None
            failed = ComposeError(f"docker compose {verb} failed", stderr=stderr)
            raise classify(failed)  # as the real runner does: a known failure is ours
        if verb == "down":
            self.engine.containers.pop(project, None)
            return
        doc = self.documents.get(project, {})
        self.engine.replica_counts[project] = len(doc.get("services", {})) or 1
        image = doc.get("services", {}).get("app", {}).get("image", "")
        labels = doc.get("services", {}).get("app", {}).get("labels", {})
        self.engine.containers[project] = ManagedContainer(
            cuid=project, labels=labels, status=_VERB_STATUS[verb], image=image
        )

    async def create(self, project: str, project_dir: Path) -> None:
        await self._verb(project, "create")

    async def up(self, project: str, project_dir: Path) -> None:
        await self._verb(project, "up")

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        await self._verb(project, verb)

    async def down(self, project: str, project_dir: Path) -> None:
        await self._verb(project, "down")

    async def version(self) -> str:
        return "2.99.0"


class FastHasher:
    """argon2 is slow on purpose; unit tests of other logic use this stand-in."""

    def hash(self, password: str) -> str:
        return "plain$" + password

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "plain$" + password


class FakeImages:
    """``ImageEngine`` over ``FakeEngine``'s set of image references (no streams)."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.exposed: dict[str, tuple[str, ...]] = {}  # image ref -> its ExposedPorts keys

    def _info(self, ref: str) -> Any:
        import hashlib

        from dockyard.domain.images.ports import ImageInfo

        return ImageInfo(
            id="sha256:" + hashlib.sha256(ref.encode()).hexdigest(),
            tags=(ref,),
            digests=(),
            size=1024,
            created=datetime(2026, 1, 1, tzinfo=UTC),
            exposed_ports=self.exposed.get(ref, ()),
            architecture="amd64",
        )

    async def list_images(self) -> list[Any]:
        return [self._info(ref) for ref in sorted(self.engine.images)]

    async def inspect_image(self, ref: str) -> Any:
        found = [i for i in await self.list_images() if ref in i.tags or i.id == ref]
        return found[0] if found else None

    async def remove_image(self, ref: str, *, force: bool) -> None:
        if ref not in self.engine.images:
            raise NotFoundError(f"image {ref} not found", code="IMAGE_NOT_FOUND")
        self.engine.images.discard(ref)

    async def tag_image(self, ref: str, repo: str, tag: str) -> None:
        self.engine.images.add(f"{repo}:{tag}")

    async def _none(self) -> AsyncIterator[Any]:
        return
        yield

    def build(self, spec: Any) -> AsyncIterator[Any]:
        return self._none()

    def pull(self, ref: str, auth: Any) -> AsyncIterator[Any]:
        return self._none()

    def push(self, ref: str, auth: Any) -> AsyncIterator[Any]:
        return self._none()

    async def ensure_build_network(self, name: str) -> None:
        return None
