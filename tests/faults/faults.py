"""A real Dockyard server on the private engine, and the ledger of what it accepted.

Every answer a fault test got is noted here (``FaultServer.note``): the 2xx ones are
the promises the invariants (``invariants.py``) hold the server to afterwards.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import ADMIN
from tests.faults.engine import PrivateEngine
from tests.server import Server, serve_env

T = TypeVar("T")

ENGINE_TIMEOUT = 3.0
RECONCILE_INTERVAL = 1.0
NETWORK = "dockyard-faults"


def wait_until(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll a condition (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Accepted:
    """One change the server said yes to (a 2xx)."""

    action: str  # the audit's action, e.g. create_container
    resource: str  # a cuid
    status: int


@dataclass
class Ledger:
    accepted: list[Accepted] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)

    @property
    def created(self) -> list[str]:
        return [a.resource for a in self.accepted if a.action == "create_container"]


class FaultServer(Server):
    """``dockyard serve`` on the private engine: short engine deadlines, a reconcile a
    second, so that convergence is quick to see."""

    def __init__(self, workdir: Path, engine: PrivateEngine, **env: str) -> None:
        self.data_dir = workdir / "data"
        settings = {
            "app_user": ADMIN[0],
            "app_pass": ADMIN[1],
            "docker_host": engine.host,
            "engine_timeout": ENGINE_TIMEOUT,
            "reconcile_interval": RECONCILE_INTERVAL,
            "network_name": NETWORK,
            "compose_timeout": 30,
        }
        settings.update({name.lower(): value for name, value in env.items()})
        super().__init__(workdir, serve_env(workdir, **settings))
        self.engine = engine
        self.ledger = Ledger()

    @property
    def database(self) -> Path:
        return self.data_dir / "dockyard.db"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=ADMIN, timeout=timeout)

    def note(self, response: httpx.Response, action: str, resource: str | None = None) -> None:
        """Remember a 2xx as a promise; a 5xx other than 503/507 fails the test at once."""
        assert response.status_code < 500 or response.status_code in (503, 507), (
            f"{action}: {response.status_code} {response.text}"
        )
        if response.status_code >= 300:
            return
        if resource is None:
            resource = str(response.json()["cuid"])
        self.ledger.accepted.append(Accepted(action, resource, response.status_code))
        if action == "delete_container":
            self.ledger.deleted.add(resource)

    def create(self, client: httpx.Client, **fields: Any) -> httpx.Response:
        body = {"image": "dockyard-test/busybox:latest", "command": ["sleep", "3600"], **fields}
        response = client.post("/containers", json=body)
        self.note(response, "create_container")
        return response

    def log_text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def compose_processes(self) -> list[str]:
        """Command lines of compose processes working on this server's projects (or any
        child of the server naming compose), wherever they were re-parented."""
        found = []
        marker = str(self.data_dir).encode()
        server_pid = self.proc.pid if self.proc and self.proc.poll() is None else -1
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] == "Z":
                continue
            child_of_server = int(stat[1]) == server_pid and b"compose" in cmdline
            if child_of_server or (marker in cmdline and b"--project-name" in cmdline):
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        return found
