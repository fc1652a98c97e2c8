"""Run the real ``dockyard serve`` on 127.0.0.1:<free port> for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import ADMIN
from tests.docker_helpers import remove_project, require_engine

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "NETWORK_NAME": "dockyard-test",
            **env,
        }
        self.output = workdir / "server.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env["PORT"] = str(self.port)
        out = self.output.open("ab")
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


@contextmanager
def running_server(tmp_path: Path, *, start: bool = True) -> Iterator[Server]:
    """A real server on its own data dir; its containers are removed afterwards."""
    require_engine()
    srv = Server(
        tmp_path,
        {
            "APP_USER": ADMIN[0],
            "APP_PASS": ADMIN[1],
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_DIR": str(tmp_path / "logs"),
        },
    )
    if start:
        srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        containers = tmp_path / "data" / "containers"
        if containers.exists():
            for cuid in os.listdir(containers):
                remove_project(cuid)
