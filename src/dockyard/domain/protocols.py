"""What the domain needs from the outside world; adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dockyard.domain.models import Account, ContainerRecord, LiveState, Status


class ComposeRunner(Protocol):
    """Lifecycle changes of one Compose project (SPEC §1: they all go through Compose)."""

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None: ...
    async def create(self, project: str, project_dir: Path) -> None: ...
    async def up(self, project: str, project_dir: Path) -> None: ...
    async def action(self, project: str, project_dir: Path, verb: str) -> None: ...
    async def down(self, project: str, project_dir: Path) -> None: ...
    async def version(self) -> str: ...


@dataclass
class ManagedContainer:
    """A container carrying Dockyard's labels, as the engine lists it."""

    cuid: str
    labels: dict[str, str]
    status: Status
    image: str = ""
    project_dir: str | None = None


@dataclass
class EngineEvent:
    cuid: str
    action: str
    attributes: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """Reads and streams through the Docker Engine API (never Compose)."""

    async def inspect(self, cuid: str) -> LiveState | None: ...
    async def list_managed(self) -> list[ManagedContainer]: ...
    async def image_exists(self, ref: str) -> bool: ...
    async def ensure_network(self, name: str) -> None: ...
    async def version(self) -> str: ...
    def stream_events(self) -> AsyncIterator[EngineEvent]: ...
    async def close(self) -> None: ...


@dataclass
class ContainerQuery:
    owner: str | None = None  # None: every owner (admins)
    statuses: Sequence[Status] = ()
    tag: str | None = None
    image: str | None = None
    limit: int = 50
    before_seq: int | None = None


class ContainerRepository(Protocol):
    async def insert(self, record: ContainerRecord) -> ContainerRecord: ...
    async def get(self, cuid: str) -> ContainerRecord | None: ...
    async def save(self, record: ContainerRecord) -> None: ...
    async def delete(self, cuid: str) -> None: ...
    async def query(self, query: ContainerQuery) -> list[ContainerRecord]: ...
    async def all(self) -> list[ContainerRecord]: ...


class AccountRepository(Protocol):
    async def get(self, username: str) -> Account | None: ...
    async def insert(self, account: Account) -> None: ...
    async def save(self, account: Account) -> None: ...
    async def count(self) -> int: ...
