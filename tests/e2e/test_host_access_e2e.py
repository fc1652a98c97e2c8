"""Host access on the real engine (issue 12): once an admin turns it on for the engine,
an admin's container gets exactly the host path (read-only) and the capability it asked
for; the engine's own view of the container says so."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.parse
from pathlib import Path

import httpx
import websockets

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.e2e.test_terminal import collect, finals, text_of, ws_url
from tests.server import Server

HEADERS = basic(*ADMIN)


async def _run(server: Server, cuid: str, command: str) -> tuple[str, int]:
    query = "tty=false&cmd=" + urllib.parse.quote(f"sh -c '{command}'")
    async with websockets.connect(ws_url(server, cuid, query), additional_headers=HEADERS) as ws:
        frames, _ = await collect(ws)
    return text_of(frames) + text_of(frames, "stderr"), int(finals(frames)[-1]["code"])


def test_a_host_path_and_a_capability_on_an_engine_that_allows_them(
    server: Server, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host\n")
    shared.chmod(0o755)
    body = {
        "image": BUSYBOX,
        "command": ["sleep", "600"],
        "start": True,
        "host": {"binds": [{"source": str(shared), "target": "/data"}], "cap_add": ["NET_ADMIN"]},
    }
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as http:
        refused = http.post("/containers", json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["details"]["engines"][0]["reason"] == "host_access"
        assert http.patch("/engines/local", json={"host_access": True}).status_code == 200
        resp = http.post("/containers", json=body)
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        assert resp.json()["status"] == "running"

    out, code = asyncio.run(_run(server, cuid, "cat /data/hello.txt"))
    assert (out, code) == ("from the host\n", 0)
    out, code = asyncio.run(_run(server, cuid, "touch /data/new 2>&1"))
    assert code != 0 and "Read-only file system" in out
    assert not (shared / "new").exists()

    inspected = subprocess.run(
        ["docker", "inspect", f"{cuid}-app-1"], capture_output=True, check=True, text=True
    )
    host_config = json.loads(inspected.stdout)[0]["HostConfig"]
    assert host_config["CapAdd"] == ["CAP_NET_ADMIN"]  # the engine names it so
    assert host_config["Privileged"] is False  # not asked for, not given
    assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
