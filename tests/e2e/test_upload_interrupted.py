"""A client that leaves in the middle of an upload leaves /app exactly as it was."""

from __future__ import annotations

import io
import os
import socket
import zipfile
from pathlib import Path

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, wait_for
from tests.server import Server

HEADERS = basic(*ADMIN)


def test_client_gone_mid_upload(server: Server, tmp_path: Path) -> None:
    cuid = httpx.post(
        f"{server.url}/containers", headers=HEADERS, json={"image": BUSYBOX}, timeout=60
    ).json()["cuid"]
    app = tmp_path / "data" / "containers" / cuid / "app"
    (app / "keep.txt").write_text("before")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("keep.txt", "after")
        zf.writestr("big.bin", os.urandom(4 * 1024 * 1024))
    body = buf.getvalue()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /containers/{cuid}/upload-zip HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {HEADERS['Authorization']}\r\n"
                "Content-Type: application/zip\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        sock.sendall(body[: len(body) // 2])  # half the body...
        spool = tmp_path / "data" / "tmp"
        # ...which the server is spooling (so the test sees the clean-up, not a no-op)...
        wait_for(
            lambda: spool.exists() and any(spool.iterdir()),
            timeout=30,
            what="upload being received",
        )
    # ...then the client is gone.

    def settled() -> bool:
        leftovers = [p for p in spool.iterdir()] if spool.exists() else []
        staged = [p for p in app.parent.iterdir() if p.name.startswith(".")]
        return not leftovers and not staged

    # The server notices the disconnect and removes its spool file.
    wait_for(settled, timeout=30, what="upload spool removed")
    assert sorted(p.name for p in app.iterdir()) == ["keep.txt"]
    assert (app / "keep.txt").read_text() == "before"
    # And the service is fine: a complete upload of the same archive works.
    resp = httpx.post(
        f"{server.url}/containers/{cuid}/upload-zip",
        content=body,
        headers={**HEADERS, "Content-Type": "application/zip"},
        timeout=60,
    )
    assert resp.status_code == 200 and resp.json()["files"] == 2
    assert (app / "keep.txt").read_text() == "after"
