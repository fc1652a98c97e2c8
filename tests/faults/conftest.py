"""Fixtures of the fault suite: a private dockerd (one per session) and a real Dockyard
server pointed at it (one per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker_helpers import require_engine
from tests.faults.engine import PrivateEngine
from tests.faults.faults import FaultServer


@pytest.fixture(scope="session")
def private_engine() -> Iterator[PrivateEngine]:
    """A second dockerd of our own (never /var/run/docker.sock), started once."""
    require_engine()
    engine = PrivateEngine(Path(f"/tmp/dy-faults-{os.getpid()}"))
    try:
        engine.start()
        engine.load_image()
        yield engine
    finally:
        engine.destroy()


@pytest.fixture
def engine(private_engine: PrivateEngine) -> PrivateEngine:
    """The private engine, running, thawed and empty at the start of a test."""
    private_engine.ensure_running()
    return private_engine


@pytest.fixture
def dockyard(engine: PrivateEngine, tmp_path: Path) -> Iterator[FaultServer]:
    """A real server on the private engine with short engine deadlines."""
    server = FaultServer(tmp_path, engine)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        engine.thaw()
