"""The async engine, its migrations, and the repositories built on it."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dockyard.errors import StorageIOError, StoreBusyError

MIGRATIONS = Path(__file__).parent / "migrations"
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class Database:
    """Owns the SQLAlchemy engine; SQLite runs in WAL mode with a busy timeout and
    ``synchronous=FULL`` unless told otherwise (``SQLITE_SYNCHRONOUS``).

    SQLite allows one writer at a time; writers that collide wait in SQLite's busy
    handler, which sleeps in growing steps (tens of ms). So on SQLite, writes queue on an
    asyncio lock instead (one writer, reads in parallel), and never meet in SQLite."""

    def __init__(
        self, url: str, *, sqlite_synchronous: str = "FULL", busy_timeout: float = 10.0
    ) -> None:
        if sqlite_synchronous not in SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            pragmas = functools.partial(
                _sqlite_pragmas, synchronous=sqlite_synchronous, busy_ms=int(busy_timeout * 1000)
            )
            event.listen(self.engine.sync_engine, "connect", pragmas)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, for writes. On SQLite, a lock another process
        holds past the busy timeout is ``StoreBusyError`` (503, Retry-After)."""
        if self.is_sqlite:
            try:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            except OperationalError as exc:
                if "database is locked" not in str(exc):
                    raise
                raise StoreBusyError(
                    "the database is locked by another writer; nothing was changed"
                ) from exc
        else:
            async with self.engine.begin() as conn:
                yield conn

    @property
    def shared(self) -> bool:
        """Several Dockyard processes may use this database (PostgreSQL; docs/engines.md):
        no single-process caches, and ``exclusive`` takes a lock they all see."""
        return not self.is_sqlite

    @asynccontextmanager
    async def exclusive(self, name: str, *, wait: float = 30.0) -> AsyncIterator[None]:
        """One holder of ``name`` at a time across every process on this database: on
        PostgreSQL a transaction-scoped advisory lock (let go when the block ends, however
        it ends); on SQLite nothing (one process, whose own asyncio locks serialise).
        Waiting longer than ``wait`` seconds is ``StoreBusyError`` (503, Retry-After)."""
        if self.is_sqlite:
            yield
            return
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        async with self.engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'"))
            try:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            except DBAPIError as exc:
                raise StoreBusyError(f"{name} is busy in another Dockyard process") from exc
            yield

    def reading(self) -> Any:
        """A connection for reads (``async with db.reading() as conn``)."""
        return self.engine.connect()

    async def migrate(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except OSError as exc:
            raise StorageIOError(f"cannot open the database: {exc}") from exc

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, synchronous: str, busy_ms: int) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL (the default, SPEC §9): a commit is on disk before its 2xx; with WAL, NORMAL
    # can lose the last commits on a power loss (not on a crash of this process).
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
