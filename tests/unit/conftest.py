"""The store fixture: every store test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from dockyard.store import Database

PG_URL = os.environ.get("DOCKYARD_TEST_PG_URL")
_NO_PG = "DOCKYARD_TEST_PG_URL not set (make test sets it)"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=_NO_PG)),
    ]
)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database (scripts/run-tests.sh starts the PostgreSQL)."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    else:
        assert PG_URL and PG_URL != "unavailable", "PostgreSQL for tests did not start"
        database = Database(PG_URL.replace("postgresql://", "postgresql+asyncpg://", 1))
        async with database.engine.begin() as conn:
            # Every table of every revision, whatever later revisions add.
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await database.migrate()
    await database.migrate()  # idempotent
    yield database
    await database.close()


@contextmanager
def dir_fd(path: Path) -> Iterator[int]:
    """A descriptor of the folder ``path`` (made if missing), as the unpackers take it."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)
