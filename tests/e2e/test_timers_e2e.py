"""Idle stop, expiry and check-in against the real server and engine (issue 11)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.server import ServeFactory, Server


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)


def _create(http: httpx.Client, **body: Any) -> str:
    payload = {"image": BUSYBOX, "command": "sleep 3600", "start": True, **body}
    resp = http.post("/containers", json=payload)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "running"
    return str(resp.json()["cuid"])


def _status(http: httpx.Client, cuid: str) -> str | None:
    resp = http.get(f"/containers/{cuid}")
    return None if resp.status_code == 404 else str(resp.json()["status"])


def _stopped(http: httpx.Client, cuid: str) -> bool:
    return _status(http, cuid) == "exited"


def _system_entries(http: httpx.Client, cuid: str, action: str) -> list[dict[str, Any]]:
    events = http.get("/events", params={"cuid": cuid, "type": action}).json()["events"]
    entries = http.get("/audit", params={"resource": cuid}).json()["entries"]
    audit = [e for e in entries if e["action"] == action and e["user"] == "system"]
    return [e for e in events if e["actor"] == "system"] + audit


def test_an_idle_container_is_stopped_by_the_system(server: Server) -> None:
    """Stopped once due, never before (how soon after is bench/automation_bench.py's)."""
    with _client(server) as http:
        cuid = _create(http, idle_timeout=1.5)
        checked = http.post(f"/containers/{cuid}/check-in")
        assert checked.status_code == 200, checked.text
        due = datetime.fromisoformat(checked.json()["idle_stop_at"])
        wait_for(lambda: _stopped(http, cuid), timeout=30, what="the idle stop")
        recorded = wait_for(
            lambda: len(_system_entries(http, cuid, "container.idle_stopped")) == 2 or None,
            what="the event and the audit entry",
        )
        assert recorded
        event = http.get("/events", params={"cuid": cuid, "type": "container.idle_stopped"})
        (stopped,) = event.json()["events"]
        assert datetime.fromisoformat(stopped["time"]) >= due
        last = datetime.fromisoformat(stopped["details"]["last_activity_at"])
        assert last + timedelta(seconds=stopped["details"]["idle_timeout"]) == due
        assert http.delete(f"/containers/{cuid}").status_code == 204


def test_the_idle_timer_survives_a_restart(serve: ServeFactory) -> None:
    server = serve()
    with _client(server) as http:
        cuid = _create(http, idle_timeout=2)
    server.kill()  # no goodbye: the timer is only in the store
    assert "running" in docker("inspect", "-f", "{{.State.Status}}", f"{cuid}-app-1")
    server.start()
    with _client(server) as http:
        wait_for(lambda: _stopped(http, cuid), timeout=30, what="the idle stop after a restart")
        assert _system_entries(http, cuid, "container.idle_stopped")


def test_an_expired_container_is_deleted(server: Server) -> None:
    with _client(server) as http:
        cuid = _create(http, ttl=2)
        wait_for(lambda: _status(http, cuid) is None, timeout=30, what="the expiry")
        assert not docker("ps", "-aq", "--filter", f"label=dockyard.cuid={cuid}").strip()
        events = http.get("/events", params={"cuid": cuid, "type": "container.expired"})
        assert [e["actor"] for e in events.json()["events"]] == ["system"]


def test_the_workload_checks_in_with_its_token_and_stays_up(server: Server) -> None:
    with _client(server) as http:
        cuid = _create(http, idle_timeout=3)
        name = f"{cuid}-app-1"
        token = docker("exec", name, "sh", "-c", "echo $DOCKYARD_CHECKIN_TOKEN").strip()
        url = docker("exec", name, "sh", "-c", "echo $DOCKYARD_CHECKIN_URL").strip()
        assert url == f"{server.url}/containers/{cuid}/check-in"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/containers/{cuid}", headers=auth).status_code == 401
        # The workload's heartbeat, for twice its idle timeout (pacing, not waiting).
        until = time.monotonic() + 6
        while time.monotonic() < until:
            resp = httpx.post(url, headers=auth)
            assert resp.status_code == 200, resp.text
            assert _status(http, cuid) == "running"
            time.sleep(0.5)
        shown = http.get(f"/containers/{cuid}").json()
        assert shown["last_activity_at"] is not None
        # Left alone, it is stopped after all.
        wait_for(lambda: _stopped(http, cuid), timeout=30, what="the idle stop")
        assert http.delete(f"/containers/{cuid}").status_code == 204
