"""A container on a Swarm engine, end to end (issue 12, docs/engines.md "Swarm").

The real server, extra dockerd 3 made a single-node swarm (tests/engines.py) and added
as an engine of kind ``swarm``: a create there is a stack with a running task; its logs,
the terminal (with the exit code), an upload and a download reach the task's container;
scale 1 -> 3 -> 1 changes the task count; delete removes the stack and the ``/app``
volume; host access is refused on the swarm path with nothing deployed."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import zipfile
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets

from dockyard.domain.containers.compose_doc import app_volume_name
from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, wait_for
from tests.engines import SwarmEngine
from tests.server import ServeFactory, Server

ENGINE = "swarm1"
HELLO = b"hello from a swarm task\n"


def swarm_docker(swarm: SwarmEngine, *args: str) -> str:
    done = subprocess.run(
        ["docker", "-H", swarm.addr, *args], capture_output=True, text=True, timeout=60
    )
    return done.stdout if done.returncode == 0 else ""


def running_tasks(swarm: SwarmEngine, cuid: str) -> int:
    out = swarm_docker(
        swarm, "service", "ps", f"{cuid}_app", "--filter", "desired-state=running",
        "--format", "{{.CurrentState}}",
    )  # fmt: skip
    return sum(1 for line in out.splitlines() if line.startswith("Running"))


def terminal(server: Server, cuid: str, script: str) -> tuple[str, int | None]:
    """Run ``script`` by the terminal (exec, no TTY): its stdout and exit code."""
    query = urlencode({"tty": "false", "cmd": f"sh -c '{script}'"})
    url = f"ws://127.0.0.1:{server.port}/ws/{cuid}?{query}"

    async def run() -> tuple[str, int | None]:
        out, code = b"", None
        async with asyncio.timeout(60):
            async with websockets.connect(url, additional_headers=basic(*ADMIN)) as ws:
                while True:
                    try:
                        frame: dict[str, Any] = json.loads(await ws.recv())
                    except websockets.ConnectionClosed:
                        break
                    if frame["type"] == "stdout":
                        data = frame["data"]
                        raw = frame.get("encoding") == "base64"
                        out += base64.b64decode(data) if raw else data.encode()
                    if frame["type"] == "exit":
                        code = frame["code"]
                    if frame["type"] in ("exit", "error"):
                        break
        return out.decode(errors="replace"), code

    return asyncio.run(run())


def site_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", HELLO)
    return buffer.getvalue()


@pytest.fixture
def admin(serve: ServeFactory, swarm_engine: SwarmEngine) -> Any:
    server = serve(engine_poll_interval=0.5, engine_poll_timeout=3)
    client = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    added = client.post("/engines", json={"id": ENGINE, "addr": swarm_engine.addr, "kind": "swarm"})
    assert added.status_code == 201 and added.json()["kind"] == "swarm", added.text
    cuids: list[str] = []
    try:
        yield server, client, cuids
    finally:
        for cuid in cuids:
            client.delete(f"/containers/{cuid}")
        client.close()


def test_a_container_runs_as_a_swarm_stack(admin: Any, swarm_engine: SwarmEngine) -> None:
    server, client, cuids = admin
    resp = client.post(
        "/containers",
        json={"image": BUSYBOX, "engine": ENGINE, "start": True,
              "command": "echo swarm-says-hi; sleep 600"},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    cuids.append(cuid)
    assert resp.json()["engine"] == ENGINE and resp.json()["status"] == "running", resp.text
    assert running_tasks(swarm_engine, cuid) == 1
    assert client.get(f"/containers/{cuid}").json()["status"] == "running"

    wait_for(
        lambda: "swarm-says-hi" in client.get(f"/containers/{cuid}/logs").text,
        what="the task's logs",
    )

    out, code = terminal(server, cuid, "echo round-trip; id -u; exit 3")
    assert "round-trip" in out and code == 3, (out, code)
    assert out.split()[1] != "0"  # the non-root user

    up = client.post(
        f"/containers/{cuid}/upload-zip",
        params={"path": "/app/site"},
        content=site_zip(),
        headers={"Content-Type": "application/zip"},
    )
    assert up.status_code in (200, 201), up.text
    got = client.get(f"/containers/{cuid}/download", params={"path": "/app/site/hello.txt"})
    assert got.status_code == 200 and got.content == HELLO
    out, code = terminal(server, cuid, "cat /app/site/hello.txt")
    assert HELLO.decode() in out and code == 0

    # Scale 1 -> 3 -> 1: the task count follows.
    scaled = client.post(f"/containers/{cuid}/scale", json={"replicas": 3})
    assert scaled.status_code == 200, scaled.text
    wait_for(lambda: running_tasks(swarm_engine, cuid) == 3, what="three tasks")
    back = client.post(f"/containers/{cuid}/scale", json={"replicas": 1})
    assert back.status_code == 200, back.text
    wait_for(lambda: running_tasks(swarm_engine, cuid) == 1, what="one task")

    # Stop and start: replicas 0, then 1 again.
    stopped = client.post(f"/containers/{cuid}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "exited", stopped.text
    assert running_tasks(swarm_engine, cuid) == 0
    started = client.post(f"/containers/{cuid}/start")
    assert started.status_code == 200 and started.json()["status"] == "running", started.text

    # Delete: the stack and its volume are gone.
    assert client.delete(f"/containers/{cuid}").status_code == 204
    cuids.remove(cuid)
    assert (
        swarm_docker(swarm_engine, "stack", "ls", "--format", "{{.Name}}").split().count(cuid) == 0
    )
    volumes = swarm_docker(swarm_engine, "volume", "ls", "-q").split()
    assert app_volume_name(cuid) not in volumes


def test_host_access_is_refused_on_the_swarm_path(admin: Any, swarm_engine: SwarmEngine) -> None:
    _server, client, _cuids = admin
    before = swarm_docker(swarm_engine, "service", "ls", "-q")
    for field, value in (
        ("privileged", True),
        ("cap_add", ["SYS_ADMIN"]),
        ("volumes", ["/:/host"]),
        ("network_mode", "host"),
        ("pid", "host"),
        ("devices", ["/dev/sda"]),
    ):
        resp = client.post(
            "/containers",
            json={"image": BUSYBOX, "engine": ENGINE, "start": True, field: value},
        )
        assert resp.status_code == 400, (field, resp.text)
        assert resp.json()["code"] == "HOST_ACCESS_DENIED", (field, resp.text)
    assert swarm_docker(swarm_engine, "service", "ls", "-q") == before
