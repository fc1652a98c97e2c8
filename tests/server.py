"""The real ``dockyard serve`` on 127.0.0.1:<free port>, for the e2e and crash tests.

The ``serve`` fixture (a factory taking settings overrides) and ``server`` (one started
with the defaults) are registered for the whole suite by ``tests/conftest.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN
from tests.docker_helpers import remove_projects, require_engine

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(workdir: Path, **overrides: object) -> dict[str, str]:
    """The environment of a ``dockyard serve`` below ``workdir``: this one's, less any
    APP_USER/APP_PASS, with DATA_DIR and LOG_DIR below workdir, on 127.0.0.1:<free port>;
    ``overrides`` are settings by name (``fetch_allow_nets=...`` or ``PORT="eighty"``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("APP_USER", "APP_PASS")}
    env.update(
        {
            "DATA_DIR": str(workdir / "data"),
            "LOG_DIR": str(workdir / "logs"),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
        }
    )
    env.update({name.upper(): str(value) for name, value in overrides.items()})
    return env


class Server:
    """One ``dockyard serve`` process; ``start`` again after ``kill`` is a restart."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = workdir / "server.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env["PORT"] = str(self.port)
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                [DOCKYARD, "serve"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/livez", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not come up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


ServeFactory = Callable[..., Server]


@contextmanager
def _servers(workdir: Path) -> Iterator[ServeFactory]:
    require_engine()
    servers: list[Server] = []

    def factory(*, start: bool = True, **overrides: object) -> Server:
        env = serve_env(
            workdir,
            app_user=ADMIN[0],
            app_pass=ADMIN[1],
            network_name="dockyard-test",
            **overrides,
        )
        srv = Server(workdir, env)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    try:
        yield factory
    finally:
        for srv in servers:
            srv.stop()
        remove_projects(workdir / "data" / "containers")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """``serve(start=True, **settings)``: a real server with the test admin and its own
    DATA_DIR below ``tmp_path``; stopped, and its containers removed, afterwards."""
    with _servers(tmp_path) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server with the default settings for a whole module, whose tests each
    make their own containers and leave the server running (a module overrides
    ``server`` with it: the start-up is ~3 s of the suite per test otherwise)."""
    with _servers(tmp_path_factory.mktemp("module-server")) as factory:
        yield factory()


@pytest.fixture
def server(serve: ServeFactory) -> Server:
    """The real server with the default settings, already up."""
    return serve()
