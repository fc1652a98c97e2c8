"""Faults of Dockyard's own: SIGKILL mid-creates, a lost record, a Compose that hangs,
a database another process keeps locked (issue 9)."""

from __future__ import annotations

import io
import shutil
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import httpx

from tests.faults.engine import PrivateEngine
from tests.faults.faults import FaultServer, wait_until
from tests.faults.invariants import check_invariants

CREATES = 6
STUB_SLEEP = "86399"  # the hanging stub's sleep, to find it in ps


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_dockyard_killed_mid_creates_keeps_every_201(dockyard: FaultServer) -> None:
    """SIGKILL while creates are in flight, then a restart: every 201 is there, and
    nothing exists that no answer announced (but for the creates cut off unanswered)."""
    answers: dict[int, httpx.Response | None] = {}

    def create(i: int) -> None:
        body = {"image": "dockyard-test/busybox:latest", "command": ["sleep", "3600"]}
        try:
            with dockyard.client() as client:
                answers[i] = client.post("/containers", json={**body, "start": True})
        except httpx.TransportError:
            answers[i] = None  # cut off with the server

    workers = [threading.Thread(target=create, args=(i,)) for i in range(CREATES)]
    for worker in workers:
        worker.start()
    # Kill it once a first create has answered, the others still at work.
    wait_until(
        lambda: any(r is not None and r.status_code == 201 for r in list(answers.values())),
        60,
        "a first 201",
    )
    dockyard.kill()
    for worker in workers:
        worker.join(timeout=60)
    for response in answers.values():
        if response is not None:
            dockyard.note(response, "create_container")
    unanswered = sum(1 for r in answers.values() if r is None)
    dockyard.start()
    # Every 201 has its audit entry, exactly once (committed before the answer).
    check_invariants(dockyard, unanswered=unanswered)


def test_adopted_container_gets_its_folder_back(dockyard: FaultServer) -> None:
    """A container whose record was lost (a database restored from an older backup) is
    adopted with its folder and compose file: start, stop and upload-zip work on it."""
    with dockyard.client() as client:
        cuid = dockyard.create(client, start=True).json()["cuid"]
    dockyard.stop()
    conn = sqlite3.connect(dockyard.database)
    with conn:
        conn.execute("DELETE FROM containers WHERE cuid = ?", (cuid,))
    conn.close()
    shutil.rmtree(dockyard.data_dir / "containers" / cuid)
    dockyard.start()
    with dockyard.client() as client:
        wait_until(lambda: client.get(f"/containers/{cuid}").status_code == 200, 30, "adoption")
        assert "adopted" in (client.get(f"/containers/{cuid}").json()["error"] or "")
        upload = client.post(
            f"/containers/{cuid}/upload-zip",
            content=_zip({"hello.txt": b"hi"}),
            headers={"Content-Type": "application/zip"},
        )
        dockyard.note(upload, "upload_zip", cuid)
        assert upload.status_code == 200, upload.text
        for action in ("stop", "start"):
            answer = client.post(f"/containers/{cuid}/{action}")
            dockyard.note(answer, f"{action}_container", cuid)
            assert answer.status_code == 200, answer.text
    check_invariants(dockyard, app={cuid: [{"hello.txt"}]})


def _stub(tmp_path: Path) -> Path:
    """A Compose that hangs on up/create and ignores SIGTERM (so does its child)."""
    stub = tmp_path / "compose-hangs"
    stub.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        '  case "$arg" in\n'
        "    version) echo 2.99.0; exit 0 ;;\n"
        f"    up|create) trap '' TERM INT; while :; do sleep {STUB_SLEEP}; done ;;\n"
        "    down|stop|start|restart|kill|pause|unpause) exit 0 ;;\n"
        "  esac\n"
        "done\n"
    )
    stub.chmod(0o755)
    return stub


def _stub_processes(stub: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(stub).encode() in cmdline or f"sleep {STUB_SLEEP}".encode() in cmdline:
            found.append(cmdline.decode(errors="replace"))
    return found


def test_hanging_compose_is_cut_off(engine: PrivateEngine, tmp_path: Path) -> None:
    """COMPOSE_TIMEOUT bounds the create: 503 COMPOSE_TIMEOUT with Retry-After, and the
    stub and its child are gone (they ignore SIGTERM: the group gets SIGKILL)."""
    stub = _stub(tmp_path)
    server = FaultServer(tmp_path, engine, COMPOSE_BIN=str(stub), COMPOSE_TIMEOUT="3")
    server.start()
    try:
        with server.client() as client:
            started = time.monotonic()
            answer = server.create(client, start=True)
            elapsed = time.monotonic() - started
        assert elapsed < 3 + 5, elapsed
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "COMPOSE_TIMEOUT"
        assert answer.headers.get("Retry-After")
        assert _stub_processes(stub) == []
        check_invariants(server)
    finally:
        server.stop()


def test_held_database_lock_is_a_bounded_503(engine: PrivateEngine, tmp_path: Path) -> None:
    """Another process holds the SQLite write lock: writes answer 503 DATABASE_BUSY with
    Retry-After after SQLITE_BUSY_TIMEOUT, reads go on, and all is well once released."""
    server = FaultServer(tmp_path, engine, SQLITE_BUSY_TIMEOUT="2")
    server.start()
    holder = sqlite3.connect(server.database, timeout=10, isolation_level=None)
    try:
        with server.client() as client:
            before = server.create(client)
            assert before.status_code == 201, before.text
            holder.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            refused = server.create(client)
            assert time.monotonic() - started < 2 + 5
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "DATABASE_BUSY"
            assert refused.headers.get("Retry-After")
            started = time.monotonic()
            assert client.get("/containers").status_code == 200
            assert client.get(f"/containers/{before.json()['cuid']}").status_code == 200
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 3
            holder.execute("ROLLBACK")
            after = server.create(client)
            assert after.status_code == 201, after.text
        check_invariants(server)
    finally:
        holder.close()
        server.stop()
