"""The engine dies or freezes under a running Dockyard (issue 9 #1, #2, #4).

Each test kills or stops the private dockerd (never the main engine), brings it back,
and checks the invariants; Dockyard itself is never restarted here.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.conftest import ADMIN, basic
from tests.faults.engine import PrivateEngine
from tests.faults.faults import ENGINE_TIMEOUT, FaultServer, wait_until
from tests.faults.invariants import check_invariants


def _status(client: httpx.Client, cuid: str) -> str | None:
    response = client.get(f"/containers/{cuid}")
    return str(response.json()["status"]) if response.status_code == 200 else None


def test_killed_idle_engine_records_converge_when_it_returns(
    dockyard: FaultServer, engine: PrivateEngine
) -> None:
    with dockyard.client() as client:
        cuid = dockyard.create(client, start=True).json()["cuid"]
        engine.kill()
        # Without its engine, reads of the record still answer (200 or an explicit 503).
        response = client.get(f"/containers/{cuid}")
        assert response.status_code in (200, 503), response.text
        engine.start()
        # The container stopped with its engine (no live-restore); the record follows.
        wait_until(lambda: _status(client, cuid) == "exited", 30, "the record to say exited")
        dockyard.note(client.post(f"/containers/{cuid}/start"), "start_container", cuid)
        assert _status(client, cuid) == "running"
    check_invariants(dockyard)


def test_engine_killed_mid_create_leaves_no_container(
    dockyard: FaultServer, engine: PrivateEngine
) -> None:
    """Issue 9 #2: the answer is a 201 or an explicit 503/4xx, never a 500, and a create
    that failed leaves no container behind once the engine is back."""
    answers: list[httpx.Response] = []
    with dockyard.client() as client:

        def create() -> None:
            answers.append(dockyard.create(client, start=True))

        worker = threading.Thread(target=create)
        worker.start()
        # Kill it as soon as the engine has made the container, Compose still at work.
        wait_until(engine.container_dirs, 30, "the engine to make the container")
        engine.kill()
        worker.join(timeout=60)
        assert answers, "the create did not answer"
        (answer,) = answers
        assert answer.status_code in (201, 503) or 400 <= answer.status_code < 500, answer.text
        if answer.status_code == 503:
            assert answer.headers.get("Retry-After"), answer.headers
            assert answer.json()["error"] == "unavailable"
        engine.start()
    check_invariants(dockyard)
    if answer.status_code != 201:
        assert engine.managed() == {}, "a failed create left its container"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_engine_killed_mid_upload_keeps_app_whole(
    dockyard: FaultServer, engine: PrivateEngine
) -> None:
    """An upload whose engine dies while its body arrives: 200 or an explicit 503, and
    /app holds the old or the new files, never a mix (I4)."""
    old = {"old.txt"}
    new = {"old.txt", "new/a.txt", "new/b.txt"}
    payload = _zip({"new/a.txt": os.urandom(256 * 1024), "new/b.txt": os.urandom(256 * 1024)})
    release = threading.Event()
    answers: list[httpx.Response] = []
    with dockyard.client() as client:
        cuid = dockyard.create(client, start=True).json()["cuid"]
        first = client.post(
            f"/containers/{cuid}/upload-zip",
            content=_zip({"old.txt": b"old"}),
            headers={"Content-Type": "application/zip"},
        )
        dockyard.note(first, "upload_zip", cuid)

        def body() -> Iterator[bytes]:
            yield payload[:4096]
            release.wait(30)
            yield payload[4096:]

        def upload() -> None:
            with dockyard.client() as other:
                answers.append(
                    other.post(
                        f"/containers/{cuid}/upload-zip",
                        content=body(),
                        headers={"Content-Type": "application/zip"},
                    )
                )

        worker = threading.Thread(target=upload)
        worker.start()
        spool = dockyard.data_dir / "tmp"
        wait_until(lambda: spool.is_dir() and any(spool.iterdir()), 30, "the body to spool")
        engine.kill()
        release.set()
        worker.join(timeout=60)
        (answer,) = answers
        assert answer.status_code in (200, 503), answer.text
        dockyard.note(answer, "upload_zip", cuid)
        engine.start()
    check_invariants(dockyard, app={cuid: [old, new]})


def test_engine_killed_mid_exec_ends_with_one_final_frame(
    dockyard: FaultServer, engine: PrivateEngine
) -> None:
    """Issue 9 #1: exactly one final `exit` or `error` frame, then a close (never 1006)."""
    with dockyard.client() as client:
        cuid = dockyard.create(client, start=True).json()["cuid"]
    ws_url = dockyard.url.replace("http", "ws") + f"/ws/{cuid}?cmd=sh&tty=false"
    frames: list[dict[str, Any]] = []
    with connect(ws_url, additional_headers=basic(*ADMIN), open_timeout=30) as ws:
        ws.send(json.dumps({"type": "stdin", "data": "echo ready\n"}))
        while not any("ready" in f.get("data", "") for f in frames):
            frames.append(json.loads(ws.recv(timeout=30)))
        engine.kill()
        started = time.monotonic()
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=30)))
        except Exception as closed:  # ConnectionClosedOK/Error: read its close code
            close = getattr(closed, "rcvd", None)
        elapsed = time.monotonic() - started
    finals = [f for f in frames if f["type"] in ("exit", "error")]
    assert len(finals) == 1, frames
    assert close is not None, "closed without a close frame (1006)"
    assert close.code in (1000, 1011), close
    assert elapsed < 2 * ENGINE_TIMEOUT + 10
    if finals[0]["type"] == "error":  # the engine's death is named as such
        assert finals[0]["error"]["error"] == "unavailable", finals[0]
    engine.start()
    check_invariants(dockyard)


def test_frozen_engine_answers_are_bounded(dockyard: FaultServer, engine: PrivateEngine) -> None:
    """Issue 9 #4: with dockerd stopped (SIGSTOP) past ENGINE_TIMEOUT, reads that need it
    answer 503 with Retry-After within the deadline, and /healthz says degraded in 1 s."""
    with dockyard.client() as client:
        cuid = dockyard.create(client, start=True).json()["cuid"]
        assert client.get("/healthz").json()["status"] == "ok"
        engine.freeze()
        try:
            for _ in range(2):  # the first probe times out; the next answer is at once
                started = time.monotonic()
                health = client.get("/healthz")
                assert time.monotonic() - started < 1.0
                assert health.status_code == 200
                assert health.json()["status"] == "degraded", health.json()
            paths = ("/containers", f"/containers/{cuid}", f"/containers/{cuid}/files")
            for path in (f"/containers/{cuid}/status", *paths):
                started = time.monotonic()
                response = client.get(path)
                elapsed = time.monotonic() - started
                assert elapsed < ENGINE_TIMEOUT + 2, (path, elapsed)
                # What the store or the disk can answer is answered; what needs the
                # engine is an explicit 503 with Retry-After.
                if path.endswith("/status"):
                    assert response.status_code == 503, (path, response.text)
                assert response.status_code in (200, 503), (path, response.text)
                if response.status_code == 503:
                    assert response.headers.get("Retry-After"), path
                    assert response.json()["error"] == "unavailable"
        finally:
            engine.thaw()
        wait_until(
            lambda: client.get("/healthz").json()["status"] == "ok", 30, "healthz to recover"
        )
    check_invariants(dockyard)
