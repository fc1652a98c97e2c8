"""The two sides every terminal benchmark compares: Dockyard's ``/ws/{cuid}`` (the
``websockets`` package's asyncio client) and a raw exec on the same container through
aiodocker (the engine's hijacked exec stream), as the same user, in the same folder, with the
same environment. Also the CPU seconds of the server, dockerd and this client over a span."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from harness import base
from harness.context import Ctx
from harness.server import proc_cpu, server_cpu

MIB = 1024 * 1024
TARGETS = {"keystroke_p50_ms": 2.0, "throughput_ratio": 0.5, "binary_ratio": 0.8}
# The binary terminal frames (SPEC §5, issue 14): the subprotocol the SDK uses.
BINARY = "dockyard.v1.binary"
# The container's processes (the server's DEFAULT_USER_UID); the raw exec runs as the same
# user, in the same folder, with the same environment as Dockyard's.
EXEC_USER = f"{base.UID}:{base.GID}"
EXEC_ENV = {"TERM": "xterm-256color"}
# Deadlines (seconds): every wait of the terminal benchmarks is bounded by one of these.
KEY_TIMEOUT = 5.0
OPEN_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 300.0
CLOSE_TIMEOUT = 15.0
TOTAL_TIMEOUT = 1800.0
# compression= of the websockets client: its default, and off.
MODES = {"deflate": "deflate", "plain": None}


def log(msg: str) -> None:
    base.log(msg, "terminal-bench")


class BenchError(base.BenchError):
    pass


# -- CPU accounting -----------------------------------------------------------------------


def _dockerd_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "dockerd":
                    return int(entry.name)
    return None


class Cpu:
    """CPU seconds of the server, the engine (dockerd) and this client over a span."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.dockerd = _dockerd_pid()

    def now(self) -> tuple[float, float, float]:
        server = server_cpu(self.ctx)[0]
        engine = proc_cpu(self.dockerd)[0] if self.dockerd else 0.0
        return server, engine, time.process_time()

    @staticmethod
    def spent(a: tuple[float, float, float], b: tuple[float, float, float]) -> dict[str, float]:
        return {
            "server_s": round(b[0] - a[0], 3),
            "dockerd_s": round(b[1] - a[1], 3),
            "client_s": round(b[2] - a[2], 3),
        }


# -- /ws ------------------------------------------------------------------------------------


def decode(frame: dict[str, Any]) -> bytes:
    data = str(frame.get("data", ""))
    return base64.b64decode(data) if frame.get("encoding") == "base64" else data.encode()


def ws_url(ctx: Ctx, cuid: str, cmd: str, tty: bool) -> str:
    query = urllib.parse.urlencode({"cmd": cmd, "tty": "true" if tty else "false"})
    return f"ws://127.0.0.1:{ctx.port}/ws/{cuid}?{query}"


def basic_auth(ctx: Ctx) -> dict[str, str]:
    user, password = ctx.auth
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def ws_open(
    ctx: Ctx, cuid: str, cmd: str, tty: bool, compression: str | None, binary: bool = False
) -> Any:
    from websockets.asyncio.client import connect

    return await connect(
        ws_url(ctx, cuid, cmd, tty),
        additional_headers=basic_auth(ctx),
        subprotocols=[BINARY] if binary else None,
        compression=compression,
        max_size=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
        ping_interval=None,  # the server pings every 5 s; the client answers
        proxy=None,
    )


def negotiated(ws: Any) -> str:
    header = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
    return str(header or "none")


async def ws_finish(ws: Any) -> dict[str, Any]:
    """Read to the final frame (bounded), then let the close complete."""
    final: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") in ("exit", "error"):
                    final = frame
                    break
    with contextlib.suppress(Exception):
        await ws.close()
    return final


# -- raw exec -------------------------------------------------------------------------------


async def raw_exec(docker: Any, cuid: str, argv: list[str], tty: bool) -> tuple[Any, Any]:
    """An exec of ``argv`` in the container's service, its stream opened."""
    container = await docker.containers.get(f"{cuid}-app-1")
    exe = await container.exec(
        argv,
        stdin=True,
        stdout=True,
        stderr=True,
        tty=tty,
        user=EXEC_USER,
        workdir="/app",
        environment=EXEC_ENV,
    )
    stream = exe.start(detach=False)
    await stream._init()
    return exe, stream
