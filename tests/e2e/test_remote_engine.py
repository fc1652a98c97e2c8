"""A container on a remote engine, end to end (issue 12, docs/engines.md "Remote engines").

The real server, an extra dockerd added as a remote engine (tests/engines.py): the whole
cycle - create, logs, upload, listing, download, ZIP, terminal, changes, metrics, stop,
start, restart, delete - runs there, and its ``/app`` is a volume of that engine only:
the uploaded files exist in that engine's data root and nowhere under the server's
DATA_DIR. A killed engine's container reads `unknown` and its actions answer 503 with
Retry-After while a local one still works, and everything works again once the engine
is back."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from dockyard.domain.containers.compose_doc import app_volume_name, container_name
from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, PYTHON, wait_for
from tests.engines import ExtraEngines
from tests.server import ServeFactory, Server

ENGINE = "eng1"
HELLO = b"hello from a remote /app\n"
BOOT = b"import os, time\nprint('booted-remote', os.getcwd(), flush=True)\ntime.sleep(600)\n"


def engine_docker(engines: ExtraEngines, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", engines.addr(1), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def site_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", HELLO)
        archive.writestr("sub/data.bin", os.urandom(70_000))
    return buffer.getvalue()


def terminal(server: Server, cuid: str, script: str) -> str:
    """Run ``script`` by the terminal (exec, no TTY); its stdout."""
    query = urlencode({"tty": "false", "cmd": f"sh -c '{script}'"})
    url = f"ws://127.0.0.1:{server.port}/ws/{cuid}?{query}"

    async def run() -> str:
        out = b""
        async with asyncio.timeout(60):
            async with websockets.connect(url, additional_headers=basic(*ADMIN)) as ws:
                with_close = True
                while with_close:
                    try:
                        frame: dict[str, Any] = json.loads(await ws.recv())
                    except websockets.ConnectionClosed:
                        break
                    if frame["type"] == "stdout":
                        data = frame["data"]
                        out += (
                            base64.b64decode(data)
                            if frame["encoding"] == "base64"
                            else (data.encode())
                        )
                    with_close = frame["type"] not in ("exit", "error")
        return out.decode(errors="replace")

    return asyncio.run(run())


def files_named(root: Path, name: str) -> list[Path]:
    return [Path(folder) / name for folder, _, names in os.walk(root) if name in names]


def test_the_whole_cycle_on_a_remote_engine(
    serve: ServeFactory, extra_engines: ExtraEngines, tmp_path: Path
) -> None:
    server = serve(engine_poll_interval=0.3, engine_poll_timeout=2)
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    cuids: list[str] = []
    try:
        added = admin.post("/engines", json={"id": ENGINE, "addr": extra_engines.addr(1)})
        assert added.status_code == 201 and added.json()["kind"] == "remote", added.text
        resp = admin.post(
            "/containers",
            json={"image": BUSYBOX, "engine": ENGINE, "start": True,
                  "command": "echo first > /app/first && echo remote-says-hi; sleep 600"},
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        cuids.append(cuid)
        assert resp.json()["engine"] == ENGINE and resp.json()["status"] == "running"
        # It runs there, not here.
        assert engine_docker(extra_engines, "inspect", container_name(cuid)).returncode == 0
        local = subprocess.run(["docker", "inspect", container_name(cuid)], capture_output=True)
        assert local.returncode != 0

        def logs() -> bool:
            return "remote-says-hi" in admin.get(f"/containers/{cuid}/logs").text

        wait_for(logs, what="the remote container's logs")
        # /app, a volume there, was given to the containers' user before it started: its
        # command's first moment wrote there.
        volume = Path(f"/var/lib/dockyard-engines/eng-1/data/volumes/{app_volume_name(cuid)}/_data")
        assert volume.stat().st_uid != 0
        assert (volume / "first").read_text() == "first\n"

        # Files: a ZIP in, then listing, download and ZIP out, all through that engine.
        up = admin.post(
            f"/containers/{cuid}/upload-zip",
            params={"path": "/app/site"},
            content=site_zip(),
            headers={"Content-Type": "application/zip"},
        )
        assert up.status_code in (200, 201), up.text
        assert up.json()["files"] == 2
        listing = admin.get(f"/containers/{cuid}/files", params={"path": "/app/site"})
        assert listing.status_code == 200, listing.text
        names = {e["name"]: e["type"] for e in listing.json()["entries"]}
        assert names == {"hello.txt": "file", "sub": "dir"}
        got = admin.get(f"/containers/{cuid}/download", params={"path": "/app/site/hello.txt"})
        assert got.status_code == 200 and got.content == HELLO
        packed = admin.get(f"/containers/{cuid}/download-zip", params={"path": "/app/site"})
        assert packed.status_code == 200, packed.text
        with zipfile.ZipFile(io.BytesIO(packed.content)) as archive:
            assert archive.read("hello.txt") == HELLO
            assert len(archive.read("sub/data.bin")) == 70_000

        # The terminal: the files are there, and /app is the containers' user's.
        out = terminal(
            server, cuid, "cat /app/site/hello.txt; touch /app/mine /tmp/changed && echo wrote"
        )
        assert HELLO.decode() in out and "wrote" in out
        changes = admin.get(f"/containers/{cuid}/changes")
        assert changes.status_code == 200, changes.text
        assert "/tmp/changed" in {c["path"] for c in changes.json()["changes"]}
        metrics = admin.get(f"/containers/{cuid}/metrics")
        assert metrics.status_code == 200, metrics.text

        # The files are in that engine's data root only.
        volume = Path(f"/var/lib/dockyard-engines/eng-1/data/volumes/{app_volume_name(cuid)}/_data")
        assert (volume / "site" / "hello.txt").read_bytes() == HELLO
        assert (volume / "mine").is_file()
        data_dir = tmp_path / "data"
        assert files_named(data_dir, "hello.txt") == [] and files_named(data_dir, "mine") == []
        assert not (data_dir / "containers" / cuid / "app").exists()

        # Stop, an upload into the stopped container, start, restart.
        stopped = admin.post(f"/containers/{cuid}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] == "exited", stopped.text
        again = admin.post(
            f"/containers/{cuid}/upload-zip",
            content=site_zip(),
            headers={"Content-Type": "application/zip"},
        )
        assert again.status_code in (200, 201), again.text
        assert admin.post(f"/containers/{cuid}/start").json()["status"] == "running"
        assert admin.post(f"/containers/{cuid}/restart").json()["status"] == "running"
        assert HELLO.decode() in terminal(server, cuid, "cat /app/hello.txt")

        # Its engine's events are followed: a stop behind Dockyard's back shows in the
        # list (read from the store, not asked of the engine).
        assert engine_docker(extra_engines, "stop", "-t", "1", container_name(cuid)).returncode == 0

        def listed_status() -> str:
            rows = admin.get("/containers").json()["containers"]
            return str(next(r["status"] for r in rows if r["cuid"] == cuid))

        wait_for(lambda: listed_status() == "exited", what="the follower's word")
        assert admin.post(f"/containers/{cuid}/start").json()["status"] == "running"

        # The engine dies: its container answers 503 (Retry-After), a local one works.
        resp = admin.post("/containers", json={"image": BUSYBOX, "engine": "local",
                                               "start": True, "command": "sleep 600"})  # fmt: skip
        assert resp.status_code == 201, resp.text
        here = resp.json()["cuid"]
        cuids.append(here)
        extra_engines.kill(1)
        wait_for(
            lambda: admin.get(f"/engines/{ENGINE}").json()["status"] == "unreachable",
            timeout=60,
            what="eng1 unreachable",
        )
        # Reads say `unknown` with when the engine last answered; actions are 503.
        seen = admin.get(f"/containers/{cuid}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["status"] == "unknown" and seen.json()["engine_last_seen"]
        listed = admin.get("/containers").json()["containers"]
        assert {c["cuid"]: c["status"] for c in listed}[cuid] == "unknown"
        assert {c["cuid"]: c["status"] for c in listed}[here] == "running"
        gone = admin.post(f"/containers/{cuid}/stop")
        assert gone.status_code == 503, gone.text
        assert gone.headers.get("Retry-After"), gone.headers
        assert admin.get(f"/containers/{here}").status_code == 200
        assert admin.post(f"/containers/{here}/stop").json()["status"] == "exited"

        # Back: the remote container answers again (no restart of Dockyard).
        extra_engines.start()
        wait_for(
            lambda: admin.get(f"/engines/{ENGINE}").json()["status"] == "healthy",
            timeout=120,
            what="eng1 healthy",
        )
        assert admin.get(f"/containers/{cuid}").status_code == 200
        assert admin.post(f"/containers/{cuid}/start").json()["status"] == "running"

        # Delete: the container and its /app volume are gone from that engine.
        assert admin.delete(f"/containers/{cuid}").status_code == 204
        cuids.remove(cuid)
        assert engine_docker(extra_engines, "inspect", container_name(cuid)).returncode != 0
        volumes = engine_docker(extra_engines, "volume", "ls", "-q")
        assert app_volume_name(cuid) not in volumes.stdout
    finally:
        for left in cuids:
            admin.delete(f"/containers/{left}")
        admin.close()


def test_a_script_provisions_a_remote_containers_volume(
    serve: ServeFactory, extra_engines: ExtraEngines, tmp_path: Path
) -> None:
    """``script`` becomes /app/boot.py in the volume, through the engine, and runs."""
    server = serve()
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    cuid = None
    try:
        added = admin.post("/engines", json={"id": ENGINE, "addr": extra_engines.addr(1)})
        assert added.status_code == 201, added.text
        resp = admin.post(
            "/containers",
            json={"image": PYTHON, "engine": ENGINE, "start": True,
                  "script": base64.b64encode(BOOT).decode()},
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]

        def logs() -> bool:
            return "booted-remote /app" in admin.get(f"/containers/{cuid}/logs").text

        wait_for(logs, what="boot.py's output")
        volume = Path(f"/var/lib/dockyard-engines/eng-1/data/volumes/{app_volume_name(cuid)}/_data")
        assert (volume / "boot.py").is_file()
        assert files_named(tmp_path / "data", "boot.py") == []
        assert admin.delete(f"/containers/{cuid}").status_code == 204
        cuid = None
    finally:
        if cuid is not None:
            admin.delete(f"/containers/{cuid}")
        admin.close()


def corrupt_zip() -> bytes:
    """A good first entry and a second whose data fails its CRC: the central directory
    reads well, so only a check of the data finds it (before anything is sent)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("first.txt", HELLO)
        archive.writestr("second.bin", os.urandom(4096))
    data = bytearray(buffer.getvalue())
    second = data.index(b"PK\x03\x04", 4)
    data[second + 30 + len("second.bin") + 10] ^= 0xFF
    return bytes(data)


def hostile_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("first.txt", HELLO)
        archive.writestr("../escape.txt", HELLO)
    return buffer.getvalue()


def test_a_refused_upload_writes_nothing_on_a_remote_engine(
    serve: ServeFactory, extra_engines: ExtraEngines
) -> None:
    server = serve()
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    cuid = None
    try:
        added = admin.post("/engines", json={"id": ENGINE, "addr": extra_engines.addr(1)})
        assert added.status_code == 201, added.text
        resp = admin.post("/containers", json={"image": BUSYBOX, "engine": ENGINE})
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        volume = Path(f"/var/lib/dockyard-engines/eng-1/data/volumes/{app_volume_name(cuid)}/_data")
        for body, reason in ((corrupt_zip(), "corrupt data"), (hostile_zip(), "'..'")):
            up = admin.post(
                f"/containers/{cuid}/upload-zip",
                params={"path": "/app/site"},
                content=body,
                headers={"Content-Type": "application/zip"},
            )
            assert up.status_code == 400, up.text
            assert up.json()["code"] == "UNSAFE_ARCHIVE_ENTRY"
            assert reason in up.json()["details"]["reason"]
            assert sorted(p.name for p in volume.rglob("*")) == []
        # The same container takes a good upload.
        good = admin.post(
            f"/containers/{cuid}/upload-zip",
            params={"path": "/app/site"},
            content=site_zip(),
            headers={"Content-Type": "application/zip"},
        )
        assert good.status_code in (200, 201), good.text
        assert (volume / "site" / "hello.txt").read_bytes() == HELLO
    finally:
        if cuid is not None:
            admin.delete(f"/containers/{cuid}")
        admin.close()


def test_images_are_checked_on_the_engine_the_create_goes_to(
    serve: ServeFactory, extra_engines: ExtraEngines
) -> None:
    """An image only that engine has is fine there; one it lacks is the same clear 400
    as on the local engine, with nothing made there (no pull)."""
    server = serve()
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    only_there = f"dockyard-test/remote-only:{os.getpid()}"
    assert engine_docker(extra_engines, "tag", BUSYBOX, only_there).returncode == 0
    cuid = None
    try:
        added = admin.post("/engines", json={"id": ENGINE, "addr": extra_engines.addr(1)})
        assert added.status_code == 201, added.text
        missing = admin.post(
            "/containers", json={"image": "dockyard-test/nowhere:1", "engine": ENGINE}
        )
        assert missing.status_code == 400, missing.text
        body = missing.json()
        assert body["code"] == "IMAGE_NOT_FOUND" and body["details"]["engine"] == ENGINE
        assert f"engine {ENGINE}" in body["message"]
        assert admin.get("/containers").json()["containers"] == []
        made = admin.post("/containers", json={"image": only_there, "engine": ENGINE})
        assert made.status_code == 201, made.text
        cuid = made.json()["cuid"]
        assert made.json()["engine"] == ENGINE
    finally:
        if cuid is not None:
            admin.delete(f"/containers/{cuid}")
        engine_docker(extra_engines, "rmi", only_there)
        admin.close()
