"""Stopping drains, never drops (issue 8): a server that gets SIGTERM right after 1,000
accepted actions has every one of their events and audit entries in its database, and
exits promptly (it used to cancel the write in flight, then wait out SQLite's 30 s busy
timeout on its own lock and lose the batch)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.server import Server

ACTIONS = 1000


async def _burst(url: str, cuid: str) -> list[int]:
    """``ACTIONS`` starts of a running container: each is a no-op for the engine but an
    accepted action, so each queues one event and one audit entry."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=url, headers=basic(*ADMIN), timeout=60, limits=limits
    ) as client:
        gate = asyncio.Semaphore(16)

        async def one() -> int:
            async with gate:
                return (await client.post(f"/containers/{cuid}/start")).status_code

        return await asyncio.gather(*(one() for _ in range(ACTIONS)))


def test_sigterm_writes_every_queued_event_and_audit_entry(tmp_path: Path, server: Server) -> None:
    srv = server
    created = httpx.post(
        f"{srv.url}/containers",
        headers=basic(*ADMIN),
        json={"image": BUSYBOX, "command": "sleep 600", "start": True},
        timeout=120,
    )
    assert created.status_code == 201, created.text
    cuid = created.json()["cuid"]
    try:
        statuses = asyncio.run(_burst(srv.url, cuid))
    except httpx.TransportError as exc:  # say what the server said (CI once saw one)
        raise AssertionError(f"{exc!r}; server: {srv.output.read_text()[-3000:]}") from exc
    assert statuses == [200] * ACTIONS
    assert srv.proc is not None
    sent = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(timeout=30)
    took = time.monotonic() - sent
    output = srv.output.read_text()
    # uvicorn re-raises the signal it caught once it has shut down cleanly.
    assert code in (0, -signal.SIGTERM), output[-2000:]
    assert '"event": "dockyard.stopped"' in output
    assert took < 2.0, f"stopping took {took:.2f} s"
    assert "journal.dropped" not in output
    db = sqlite3.connect(tmp_path / "data" / "dockyard.db")
    try:
        events = db.execute(
            "SELECT count(*) FROM events WHERE cuid = ? AND type = 'container.action'",
            (cuid,),
        ).fetchone()[0]
        audited = db.execute(
            "SELECT count(*) FROM audit WHERE resource = ? AND action = 'start_container'",
            (cuid,),
        ).fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    assert events == ACTIONS
    assert audited == ACTIONS


async def test_sigterm_with_open_terminals_gives_each_its_last_frame(server: Server) -> None:
    """Issue 9: SIGTERM while terminals are open; each session gets exactly one final
    frame (``shutting_down``) before the connection closes, the exec processes are gone,
    and the server exits."""
    import json

    import websockets

    created = httpx.post(
        f"{server.url}/containers",
        headers=basic(*ADMIN),
        json={"image": BUSYBOX, "command": "sleep 600", "start": True},
        timeout=120,
    )
    assert created.status_code == 201, created.text
    cuid = created.json()["cuid"]
    url = f"ws://127.0.0.1:{server.port}/ws/{cuid}?cmd=sleep%20300&tty=false"
    sessions = [await websockets.connect(url, additional_headers=basic(*ADMIN)) for _ in range(5)]
    # Attach too: the main process keeps running after the service stops.
    sessions.append(
        await websockets.connect(
            f"ws://127.0.0.1:{server.port}/ws/{cuid}", additional_headers=basic(*ADMIN)
        )
    )
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    for ws in sessions:
        frames = []
        async with asyncio.timeout(30):
            try:
                async for message in ws:
                    frames.append(json.loads(message))
            except websockets.ConnectionClosed:
                pass
        finals = [f for f in frames if f["type"] in ("exit", "error")]
        assert len(finals) == 1, frames
        assert finals[0]["type"] == "error" and finals[0]["error"]["code"] == "shutting_down"
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    top = subprocess.run(
        ["docker", "top", f"{cuid}-app-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "sleep 300" not in top and "sleep 600" in top
