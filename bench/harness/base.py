"""Paths, the image, deadlines and the small helpers every benchmark script uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")

IMAGE = "dockyard-test/busybox:latest"
COMMAND = "sleep 600"
NETWORK = "dockyard-bench"
USER = "bench"
UID, GID = 1000, 1000  # the server's DEFAULT_USER_UID (default 1000:1000)

# Deadlines (seconds). Every wait in the scripts is bounded by one of these.
SERVER_START_TIMEOUT = 60
HTTP_TIMEOUT = 30
CREATE_TIMEOUT = 180  # a create waits for `compose up` (the server's own deadline is 120 s)
COMPOSE_TIMEOUT = 180
CONCURRENT_TIMEOUT = 600  # the whole burst of 50
DOCKER_CLI_TIMEOUT = 60
CLEANUP_BUDGET = 300


class BenchError(RuntimeError):
    pass


def log(msg: str, prefix: str = "bench") -> None:
    print(f"[{prefix} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise BenchError(f"DOCKER_HOST={host}: the benchmarks talk to a unix socket only")
    return "/var/run/docker.sock"


def run_cmd(
    argv: list[str], timeout: float = DOCKER_CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
