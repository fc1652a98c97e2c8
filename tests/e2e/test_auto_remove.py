"""``auto_remove``: the server removes a container once its main process has ended, also
one that ended while the server was down (the start-up reconcile)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.server import ServeFactory, Server


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)


def _create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    payload = {"image": BUSYBOX, "start": True, "auto_remove": True, **body}
    resp = http.post("/containers", json=payload)
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


def _gone(http: httpx.Client, cuid: str) -> bool:
    return http.get(f"/containers/{cuid}").status_code == 404


def test_a_container_with_auto_remove_is_removed_after_it_exits(server: Server) -> None:
    with _client(server) as http:
        made = _create(http, command=["sh", "-c", "read line; exit 4"])  # ends when told
        cuid = made["cuid"]
        assert made["auto_remove"] is True
        assert http.get(f"/containers/{cuid}").json()["status"] == "running"
        docker("kill", "--signal", "TERM", f"{cuid}-app-1", check=False)
        wait_for(lambda: _gone(http, cuid), timeout=30, what="the auto-removal")
        assert not docker("ps", "-aq", "--filter", f"label=dockyard.cuid={cuid}").strip()
        audit = http.get("/audit", params={"resource": cuid}).json()["entries"]
        removed = [e for e in audit if e["action"] == "container.auto_removed"]
        assert removed and removed[0]["user"] == "system"


def test_the_exit_code_of_a_quick_command_is_readable_before_the_removal(
    server: Server,
) -> None:
    with _client(server) as http:
        cuid = _create(http, command=["sh", "-c", "echo bye; exit 3"])["cuid"]
        state = wait_for(
            lambda: (
                (s := http.get(f"/containers/{cuid}/status").json())["status"] == "exited" and s
            ),
            timeout=30,
            what="the exit",
        )
        assert state["exit_code"] == 3
        wait_for(lambda: _gone(http, cuid), timeout=30, what="the auto-removal")
        died = http.get("/events", params={"cuid": cuid, "type": "die"}).json()["events"]
        assert died[0]["details"]["exit_code"] == 3


def test_auto_remove_needs_restart_no(server: Server) -> None:
    with _client(server) as http:
        body = {"image": BUSYBOX, "auto_remove": True, "restart": "always"}
        resp = http.post("/containers", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["details"]["field"] == "auto_remove"
        cuid = _create(http, command="sleep 600")["cuid"]
        patched = http.patch(f"/containers/{cuid}", json={"restart": "always"})
        assert patched.status_code == 400, patched.text
        assert http.delete(f"/containers/{cuid}").status_code == 204


def test_one_that_exited_while_the_server_was_down_is_removed_at_start_up(
    serve: ServeFactory,
) -> None:
    server = serve()
    with _client(server) as http:
        cuid = _create(http, command="sleep 600")["cuid"]
    server.kill()
    docker("stop", "-t", "1", f"{cuid}-app-1")
    server.start()
    with _client(server) as http:
        # the reconcile before the server answers removed it
        assert _gone(http, cuid)
        assert not docker("ps", "-aq", "--filter", f"label=dockyard.cuid={cuid}").strip()
