"""The run's own ``dockyard serve``: started on a free port, stopped, its CPU time read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from harness.base import DOCKYARD, GID, SERVER_START_TIMEOUT, UID, USER, BenchError, free_port
from harness.context import Ctx

# The settings the run chooses; every other one keeps its default, so that a developer's
# shell can neither tune nor redirect the benchmark.
OWN_SETTINGS = {"HOST", "PORT", "APP_USER", "APP_PASS", "DATA_DIR", "LOG_DIR", "NETWORK_NAME"}
OWN_SETTINGS |= {"RECONCILE_INTERVAL", "DEFAULT_USER_UID", "DOCKER_HOST"}


def server_env(ctx: Ctx) -> dict[str, str]:
    from dockyard.settings import Settings

    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(ctx.port),
        "APP_USER": USER,
        "APP_PASS": ctx.password,
        "DATA_DIR": str(ctx.data_dir),
        "LOG_DIR": str(ctx.log_dir),
        "NETWORK_NAME": ctx.network,
        "RECONCILE_INTERVAL": "3600",
        "DEFAULT_USER_UID": f"{UID}:{GID}",
    }
    for name in Settings.model_fields:
        if name.upper() not in OWN_SETTINGS:
            env.pop(name.upper(), None)
    # A setting under test, on purpose: BENCH_SERVER_ENV="SQLITE_SYNCHRONOUS=NORMAL,…".
    for item in os.environ.get("BENCH_SERVER_ENV", "").split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            env[name.strip().upper()] = value.strip()
    return env


def start_server(ctx: Ctx) -> None:
    ctx.port = free_port()
    env = server_env(ctx)
    ctx.server_log = ctx.root / "server.out"
    with ctx.server_log.open("ab") as out:
        # cwd = the temp dir, so that a developer's ./.env is not read. Its own session: a
        # Ctrl-C in the terminal reaches only the script, which then cleans up through the
        # API before it stops the server.
        ctx.proc = subprocess.Popen(
            [DOCKYARD, "serve"],
            cwd=ctx.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if ctx.proc.poll() is not None:
            raise BenchError(f"server exited at start-up:\n{ctx.server_log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{ctx.url}/livez", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchError(f"server did not answer /livez within {SERVER_START_TIMEOUT} s")


def stop_server(ctx: Ctx) -> None:
    proc = ctx.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def proc_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process itself and of the children it has reaped, from
    /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def server_cpu(ctx: Ctx) -> tuple[float, float]:
    """CPU seconds of the server process itself and of its reaped children (its Compose
    calls)."""
    return proc_cpu(ctx.proc.pid) if ctx.proc is not None else (0.0, 0.0)
