"""What the domain needs from the outside world; adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dockyard.domain.models import Account, ContainerRecord, LiveState, Port, Status
from dockyard.domain.terminal.framing import TerminalStream

if TYPE_CHECKING:
    from dockyard.domain.access.audit import AuditEntry


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
    replica: int = 1  # replicas 2..N of a scaled container carry the same cuid


@dataclass(frozen=True)
class ReplicaState:
    """One replica of a container as the engine lists it (scale, issue 11)."""

    index: int
    status: Status
    ports: list[Port] = field(default_factory=list)


@dataclass
class EngineEvent:
    cuid: str
    action: str
    attributes: dict[str, str] = field(default_factory=dict)
    time: datetime | None = None  # when the engine saw it (None: unknown)


# -- observation (logs, metrics): issue 4 ---------------------------------------------


@dataclass(frozen=True)
class ContainerProcess:
    """The engine's view of a container's process: what metrics need to find it."""

    container_id: str
    pid: int  # 0 when not running
    status: Status
    tty: bool


@dataclass(frozen=True)
class ResourceSample:
    """One reading of a container's counters (cumulative ones: CPU, network, block I/O).

    ``clock_ns`` is a monotonic clock of the sample's source: only differences between two
    samples of the same source mean anything (CPU % = Δcpu_ns / Δclock_ns)."""

    source: str  # "cgroup" | "engine"
    clock_ns: int
    at: datetime
    cpu_ns: int | None = None
    online_cpus: int | None = None
    memory_used: int | None = None
    memory_limit: int | None = None
    net_rx: int | None = None
    net_tx: int | None = None
    blk_read: int | None = None
    blk_write: int | None = None
    pids: int | None = None


class ResourceReader(Protocol):
    """Reads samples of local containers (cgroup files); None where it cannot."""

    async def read(self, procs: Sequence[ContainerProcess]) -> list[ResourceSample | None]: ...


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail: int | None = None  # None: all
    since: float | None = None  # unix seconds
    until: float | None = None
    timestamps: bool = False
    stdout: bool = True
    stderr: bool = True


class ByteStream(Protocol):
    """An open body from the engine: iterate it, and close it when done."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class ChangeKind(StrEnum):
    CHANGED = "changed"
    ADDED = "added"
    DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    """A path of the container's file system that differs from its image's."""

    path: str
    kind: ChangeKind


@dataclass(frozen=True)
class PathStat:
    """A path in the container, as the engine's archive endpoint sees it."""

    name: str
    size: int
    mode: int  # permission bits
    is_dir: bool
    is_link: bool
    link_target: str
    mtime: datetime | None


class Engine(Protocol):
    """Reads and streams through the Docker Engine API (never Compose)."""

    async def inspect(self, cuid: str) -> LiveState | None: ...
    async def list_managed(self) -> list[ManagedContainer]: ...
    async def image_exists(self, ref: str) -> bool: ...
    async def ensure_network(self, name: str) -> None: ...
    async def version(self) -> str: ...
    async def changes(self, cuid: str) -> list[Change]: ...
    async def archive_stat(self, cuid: str, path: str) -> PathStat | None: ...
    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None: ...
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
    ) -> TerminalStream: ...
    async def open_attach(self, cuid: str, *, replica: int = 1) -> TerminalStream: ...
    async def recent_output(self, cuid: str, max_bytes: int, *, replica: int = 1) -> bytes: ...
    async def list_replicas(self, cuid: str) -> list[ReplicaState]: ...
    async def replicas_of_many(self, cuids: Collection[str]) -> dict[str, list[ReplicaState]]: ...
    def stream_events(self) -> AsyncIterator[EngineEvent]: ...
    async def close(self) -> None: ...
    # observation (issue 4)
    async def process(self, cuid: str, *, replica: int = 1) -> ContainerProcess | None: ...
    async def stats_once(self, container_id: str) -> ResourceSample | None: ...
    async def open_logs(self, cuid: str, query: LogQuery, *, replica: int = 1) -> ByteStream: ...


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
    async def save(self, record: ContainerRecord, *, audit: AuditEntry | None = None) -> None:
        """The whole record; ``audit``: an audit entry committed in the same transaction."""
        ...

    async def save_state(self, record: ContainerRecord) -> None: ...
    async def delete(self, cuid: str, *, audit: AuditEntry | None = None) -> None:
        """The record and its host-port claims (and ``audit``), in one transaction."""
        ...

    async def query(self, query: ContainerQuery) -> list[ContainerRecord]: ...
    async def all(self) -> list[ContainerRecord]: ...
    async def save_activity(self, marks: dict[str, datetime]) -> None: ...
    async def timed(self) -> list[ContainerRecord]: ...


@dataclass(frozen=True)
class Fetched:
    """A URL's body, saved to a file."""

    url: str  # where it finally came from, without userinfo or query
    size: int
    content_type: str | None = None


class UrlFetcher(Protocol):
    """Fetches a client-given URL into ``dest`` (http and https, public addresses only).

    Errors name ``field`` (the request field that gave the URL) and never show the URL's
    userinfo or query."""

    async def fetch(self, url: str, dest: Path, *, field: str) -> Fetched: ...


class AccountRepository(Protocol):
    async def get(self, username: str) -> Account | None: ...
    async def insert(self, account: Account) -> None: ...
    async def save(self, account: Account) -> None: ...
    async def count(self) -> int: ...
