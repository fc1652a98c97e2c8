"""Test doubles for unit tests: an in-memory engine and a Compose that records calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dockyard.domain.models import LiveState, Status
from dockyard.domain.protocols import EngineEvent, ManagedContainer
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
}


class FakeEngine:
    def __init__(self, images: tuple[str, ...] = ("busybox:test",)) -> None:
        self.images = set(images)
        self.containers: dict[str, ManagedContainer] = {}
        self.inspects = 0

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

    async def changes(self, cuid: str) -> list[dict[str, Any]]:
        return []

    async def archive_stat(self, cuid: str, path: str) -> dict[str, Any] | None:
        return None

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        raise NotFoundError(f"{path} does not exist", code="PATH_NOT_FOUND")


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
            raise ComposeError(f"docker compose {verb} failed", stderr=stderr)
        if verb == "down":
            self.engine.containers.pop(project, None)
            return
        doc = self.documents.get(project, {})
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
