"""Extra Docker engines for the tests of several engines (``scripts/extra-engines.sh``).

``extra_engines`` (session scope) starts two extra dockerds, each in its own network
namespace with its own socket, data root and pid file, and stops them at the end of the
session; it is skipped unless Docker is up (it fails instead with DOCKYARD_REQUIRE_DOCKER=1)
or the script cannot run (it needs root). The main engine is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docker_helpers import require_engine

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "extra-engines.sh"
COUNT = 2


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


def _run(*args: str) -> None:
    out = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"extra-engines.sh {' '.join(args)} failed: {out.stderr[-2000:]}")


@pytest.fixture(scope="session")
def extra_engines() -> Iterator[ExtraEngines]:
    require_engine()
    if os.geteuid() != 0:
        if os.environ.get("DOCKYARD_REQUIRE_DOCKER") == "1":
            pytest.fail("extra engines need root (scripts/extra-engines.sh)")
        pytest.skip("extra engines need root (scripts/extra-engines.sh)")
    engines = ExtraEngines(COUNT)
    engines.start()
    try:
        yield engines
    finally:
        _run("stop")
