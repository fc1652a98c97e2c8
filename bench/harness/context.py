"""The run's context: everything a run creates, so that everything can be removed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.base import HTTP_TIMEOUT, NETWORK, REPO, RESULTS, USER, docker_socket


@dataclass
class Ctx:
    root: Path
    data_dir: Path
    log_dir: Path
    raw_root: Path
    compose_bin: str
    compose_version: str
    password: str
    # Each script its own network, so that two scripts running at once never remove each
    # other's.
    network: str = NETWORK
    # Where the clean-up keeps the server's log (None: nowhere).
    keep_log: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None
    network_existed: bool = True
    api_cuids: set[str] = field(default_factory=set)
    raw_projects: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (USER, self.password)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=HTTP_TIMEOUT, **kw)

    def engine(self) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=docker_socket())
        return httpx.Client(transport=transport, base_url="http://docker", timeout=HTTP_TIMEOUT)

    def compose_env(self) -> dict[str, str]:
        return dict(os.environ)


def new_ctx(
    prefix: str,
    network: str = NETWORK,
    keep_log: Path | None = RESULTS / "latest-server.log",
) -> Ctx:
    """A fresh run: its own temporary folder (a short, unique path that marks this run's
    projects, folders and processes), a random password, the Compose binary to compare to."""
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    from dockyard.adapters.compose import find_compose_binary

    binary, compose_version = find_compose_binary()
    root = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    ctx = Ctx(
        root=root,
        data_dir=root / "data",
        log_dir=root / "logs",
        raw_root=root / "raw",
        compose_bin=str(binary),
        compose_version=compose_version,
        password=secrets.token_urlsafe(24),
        network=network,
        keep_log=keep_log,
    )
    ctx.raw_root.mkdir()
    return ctx
