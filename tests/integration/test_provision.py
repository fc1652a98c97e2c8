"""Create-time provisioning against the real engine: script, script_url, data_url.

A real HTTP server on 127.0.0.1 serves the files; the application may fetch from it only
where its settings allow 127.0.0.1/32 (the ``allowed`` fixture), as an admin would."""

from __future__ import annotations

import base64
import io
import os
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.domain.containers.compose_doc import container_name
from tests.docker_helpers import BUSYBOX, PYTHON, docker, wait_for
from tests.integration.conftest import Live, live_app, zip_of


class FileServer:
    """Serves one folder over HTTP on 127.0.0.1 and records each path asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        server = self

        class _Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    server = FileServer(root)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def allowed(tmp_path: Path) -> AsyncIterator[Live]:
    """The real application, allowed to fetch from 127.0.0.1 (FETCH_ALLOW_NETS)."""
    async with live_app(tmp_path, fetch_allow_nets="127.0.0.1/32") as live:
        yield live


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tar_of(members: list[tuple[str, bytes | None, bytes, str]]) -> bytes:
    """(name, data or None, type, link target) -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def owners(root: Path) -> set[int]:
    found = {root.stat().st_uid}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add((Path(dirpath) / name).lstat().st_uid)
    return found


async def cuids(live: Live) -> set[str]:
    """Records in the store (the start-up reconcile may adopt strays from other runs)."""
    page = (await live.client.get("/containers", params={"limit": 500})).json()
    return {c["cuid"] for c in page["containers"]}


def logs_of(cuid: str, needle: str) -> str:
    return wait_for(
        lambda: (out := docker("logs", container_name(cuid))) and needle in out and out,
        what=f"{needle!r} in the container's output",
    )


async def test_script_is_boot_py_and_runs_on_start(live: Live) -> None:
    script = "import os\nprint('provisioned', os.environ['CONTAINER_UID'], flush=True)\n"
    c = await live.create(image=PYTHON, script=b64(script), start=True)
    logs_of(c["cuid"], f"provisioned {c['cuid']}")
    boot = live.settings.containers_dir / c["cuid"] / "app" / "boot.py"
    assert boot.read_text() == script and boot.stat().st_uid == 1000
    assert "script" not in c  # a create-time input, not part of the container object


async def test_script_url_is_fetched_into_boot_py(allowed: Live, files: FileServer) -> None:
    url = files.serve("boot.py", b"print('fetched boot', flush=True)\n")
    c = await allowed.create(image=PYTHON, script_url=url)
    assert files.requests == ["/boot.py"]
    assert (await allowed.client.post(f"/containers/{c['cuid']}/start")).status_code == 200
    logs_of(c["cuid"], "fetched boot")


async def test_data_url_zip_lands_in_data_path_owned_by_the_user(
    allowed: Live, files: FileServer
) -> None:
    url = files.serve(
        "bundle.zip", zip_of({"config.json": b'{"setting": 1}', "sub/notes.txt": b"notes"})
    )
    c = await allowed.create(
        image=BUSYBOX, command="sleep 600", data_url=url, data_path="/app/data", start=True
    )
    cuid = c["cuid"]
    project = allowed.settings.containers_dir / cuid
    data = project / "app" / "data"
    assert (data / "config.json").read_bytes() == b'{"setting": 1}'
    assert (data / "sub" / "notes.txt").read_bytes() == b"notes"
    assert owners(data) == {1000}
    assert docker("exec", container_name(cuid), "cat", "/app/data/sub/notes.txt") == "notes"
    # Nothing of the fetch or the staging stays beside app/.
    assert sorted(p.name for p in project.iterdir()) == ["app", "compose.yaml"]


async def test_data_url_tar_gz_unpacks_into_app(allowed: Live, files: FileServer) -> None:
    url = files.serve(
        "site.tar.gz",
        tar_of(
            [
                ("./", None, tarfile.DIRTYPE, ""),
                ("./index.html", b"<h1>hi</h1>", tarfile.REGTYPE, ""),
                ("./assets/", None, tarfile.DIRTYPE, ""),
                ("./assets/app.js", b"console.log(1)", tarfile.REGTYPE, ""),
            ]
        ),
    )
    c = await allowed.create(image=BUSYBOX, command="sleep 600", data_url=url, start=True)
    app = allowed.settings.containers_dir / c["cuid"] / "app"
    assert (app / "index.html").read_bytes() == b"<h1>hi</h1>"
    assert (app / "assets" / "app.js").read_bytes() == b"console.log(1)"
    assert owners(app) == {1000}
    out = docker("exec", container_name(c["cuid"]), "cat", "/app/assets/app.js")
    assert out == "console.log(1)"


async def test_data_url_plain_file_is_named_after_the_url(allowed: Live, files: FileServer) -> None:
    url = files.serve("notes.csv", b"a,b\n1,2\n")
    c = await allowed.create(image=BUSYBOX, data_url=url + "?v=2", data_path="/app/in")
    saved = allowed.settings.containers_dir / c["cuid"] / "app" / "in" / "notes.csv"
    assert saved.read_bytes() == b"a,b\n1,2\n"
    assert saved.stat().st_uid == 1000 and saved.parent.stat().st_uid == 1000
    assert files.requests == ["/notes.csv?v=2"]


Entry = tuple[str, bytes | None, bytes, str]
FINE: Entry = ("ok.txt", b"fine", tarfile.REGTYPE, "")


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (("pw", None, tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (("sh", None, tarfile.LNKTYPE, "/etc/shadow"), "hard link"),
        (("../escape.txt", b"out", tarfile.REGTYPE, ""), "'..'"),
    ],
)
async def test_hostile_tar_is_refused_and_leaves_nothing(
    allowed: Live, files: FileServer, hostile: Entry, reason: str
) -> None:
    url = files.serve("evil.tar.gz", tar_of([FINE, hostile]))
    before = await cuids(allowed)
    resp = await allowed.client.post(
        "/containers", json={"image": BUSYBOX, "data_url": url, "start": True}
    )
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "validation_error" and body["code"] == "UNSAFE_ARCHIVE_ENTRY"
    assert reason in body["details"]["reason"]
    assert files.requests == ["/evil.tar.gz"]
    allowed.assert_nothing_left()
    assert await cuids(allowed) == before
    assert not (allowed.settings.containers_dir.parent / "escape.txt").exists()


async def test_private_addresses_are_refused_without_the_allowance(
    live: Live, files: FileServer
) -> None:
    url = files.serve("bundle.zip", zip_of({"a.txt": b"a"}))
    before = await cuids(live)
    for field, target in (
        ("data_url", url),
        ("script_url", "http://169.254.169.254/latest/meta-data/"),
        ("data_url", f"http://[::ffff:127.0.0.1]:{files.port}/bundle.zip"),
    ):
        resp = await live.client.post("/containers", json={"image": BUSYBOX, field: target})
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert body["code"] == "URL_NOT_ALLOWED"
        assert body["details"]["field"] == field
    assert files.requests == []
    live.assert_nothing_left()
    assert await cuids(live) == before


async def test_bad_script_and_fetch_failures_leave_nothing(
    allowed: Live, files: FileServer
) -> None:
    before = await cuids(allowed)
    resp = await allowed.client.post(
        "/containers", json={"image": PYTHON, "script": "this is not base64!"}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_SCRIPT"
    missing = f"http://127.0.0.1:{files.port}/missing.zip?token=secret"
    resp = await allowed.client.post("/containers", json={"image": BUSYBOX, "data_url": missing})
    assert resp.status_code == 400 and resp.json()["code"] == "FETCH_FAILED"
    assert resp.json()["details"]["url"] == f"http://127.0.0.1:{files.port}/missing.zip"
    assert "secret" not in resp.text
    allowed.assert_nothing_left()
    assert await cuids(allowed) == before
