"""Extra Docker engines for the tests of several engines (``scripts/extra-engines.sh``).

``extra_engines`` (session scope) starts two extra dockerds, each in its own network
namespace with its own socket, data root and pid file; ``swarm_engine`` (session scope)
starts engine 3 (with 1 and 2) and makes it a single-node swarm. At the end of the
session they are stopped only if none of the extras was running when the fixture
started (engines someone else started - another session on this machine - are left
alone). They are skipped unless Docker is up (they fail instead with
DOCKYARD_REQUIRE_DOCKER=1) or the script cannot run (it needs root). The main engine is
never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.docker_helpers import require_engine

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "extra-engines.sh"
COUNT = 2
SWARM = 3  # the extra engine made a single-node swarm (engines 1 and 2 are others' tests')


@dataclass(frozen=True)
class ExtraEngines:
    count: int

    def addr(self, k: int) -> str:
        return f"unix:///run/dockyard-eng-{k}.sock"

    def pid(self, k: int) -> int:
        return int(Path(f"/run/dockyard-eng-{k}.pid").read_text().strip())

    def kill(self, k: int) -> None:
        """SIGKILL engine ``k``'s dockerd (by its pid file): an engine that died."""
        os.kill(self.pid(k), signal.SIGKILL)

    def start(self) -> None:
        """Start the ones that are not running (waits for their sockets)."""
        _run(str(self.count))


def _running(k: int) -> bool:
    """Whether extra engine ``k``'s dockerd (its pid file's process) is alive."""
    try:
        os.kill(int(Path(f"/run/dockyard-eng-{k}.pid").read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _any_running() -> bool:
    return any(_running(k) for k in range(1, 10))


def _need_root() -> None:
    require_engine()
    if os.geteuid() != 0:
        if os.environ.get("DOCKYARD_REQUIRE_DOCKER") == "1":
            pytest.fail("extra engines need root (scripts/extra-engines.sh)")
        pytest.skip("extra engines need root (scripts/extra-engines.sh)")


def _run(*args: str) -> None:
    out = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"extra-engines.sh {' '.join(args)} failed: {out.stderr[-2000:]}")


@pytest.fixture(scope="session")
def extra_engines() -> Iterator[ExtraEngines]:
    _need_root()
    ours = not _any_running()  # stop them at the end only if this session started them
    engines = ExtraEngines(COUNT)
    engines.start()
    try:
        yield engines
    finally:
        if ours:
            _run("stop")


@dataclass(frozen=True)
class SwarmEngine:
    """Extra engine ``k``, a single-node swarm (a Swarm manager)."""

    k: int

    @property
    def addr(self) -> str:
        return f"unix:///run/dockyard-eng-{self.k}.sock"


@pytest.fixture(scope="session")
def swarm_engine() -> Iterator[SwarmEngine]:
    _need_root()
    ours = not _any_running()
    _run(str(SWARM), "--swarm", str(SWARM))
    try:
        yield SwarmEngine(SWARM)
    finally:
        if ours:
            _run("stop")


@contextmanager
def swarm_client(url: str, engine: SwarmEngine, engine_id: str, **body: Any) -> Iterator[Any]:
    """``(http, cuids)``: the admin's client of the server at ``url`` with ``engine``
    added as swarm engine ``engine_id`` (``body``: more of the engine's fields); each cuid
    appended to ``cuids`` is deleted afterwards."""
    http = httpx.Client(base_url=url, headers=basic(*ADMIN), timeout=120)
    added = http.post(
        "/engines", json={"id": engine_id, "addr": engine.addr, "kind": "swarm", **body}
    )
    assert added.status_code == 201, added.text
    cuids: list[str] = []
    try:
        yield http, cuids
    finally:
        for cuid in cuids:
            http.delete(f"/containers/{cuid}")
        http.close()
