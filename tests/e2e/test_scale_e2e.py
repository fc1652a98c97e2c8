"""Scale against the real server and engine (issue 11): replicas of a container's
service, each with its own host ports, terminal and logs, kept across restarts."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httpx
import websockets

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, project_containers, wait_for
from tests.e2e.test_terminal import collect, finals, text_of, ws_url
from tests.integration.test_ports import answers, http_image  # noqa: F401 (a fixture)
from tests.server import ServeFactory, Server, free_port

HEADERS = basic(*ADMIN)
# busybox's httpd on the image's EXPOSEd 8000; each replica first logs its host name.
SERVE = "echo replica-on-$(hostname); exec httpd -f -p 8000 -h /"


def _client(server: Server, auth: tuple[str, str] = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=auth, timeout=120)


def _scale(http: httpx.Client, cuid: str, **how: Any) -> httpx.Response:
    count = how.pop("count", None)
    params = {"count": count} if count is not None else None
    return http.post(f"/containers/{cuid}/scale", params=params, json=how or None)


def _urls(container: dict[str, Any]) -> list[str]:
    """Each replica's ready url of port 8000, in replica order."""
    return [
        next(p["url"] for p in r["ports"] if p["container"] == 8000) for r in container["replicas"]
    ]


def _hostnames(urls: list[str]) -> list[str]:
    async def all_of() -> list[str]:
        return list(await asyncio.gather(*(answers(url) for url in urls)))

    return asyncio.run(all_of())


async def _terminal(server: Server, cuid: str, query: str) -> list[dict[str, Any]]:
    async with websockets.connect(ws_url(server, cuid, query), additional_headers=HEADERS) as ws:
        frames, _ = await collect(ws)
    return frames


def test_scale_one_three_one_with_publish_all(serve: ServeFactory, http_image: str) -> None:  # noqa: F811
    server = serve()
    with _client(server) as http:
        resp = http.post(
            "/containers",
            json={"image": http_image, "command": SERVE, "publish_all": True, "start": True},
        )
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
        assert [r["index"] for r in resp.json()["replicas"]] == [1]

        resp = _scale(http, cuid, replicas=3)
        assert resp.status_code == 200, resp.text
        scaled = resp.json()
        assert [r["index"] for r in scaled["replicas"]] == [1, 2, 3]
        assert {r["status"] for r in scaled["replicas"]} == {"running"}
        urls = _urls(scaled)
        assert len(set(urls)) == 3 and urls[0] == scaled["ports"][0]["url"]
        names = _hostnames(urls)
        assert len(set(names)) == 3  # three containers, each behind its own port

        # The terminal and the logs of replica 2 are replica 2's.
        frames = asyncio.run(_terminal(server, cuid, "cmd=hostname&replica=2"))
        assert text_of(frames).strip() == names[1] and finals(frames)[-1]["type"] == "exit"
        logs = wait_for(
            lambda: names[1] in (t := http.get(f"/containers/{cuid}/logs?replica=2").text) and t,
            what="replica 2's log",
        )
        assert names[0] not in logs

        # A missing replica is a clear 404, in the logs and the terminal.
        resp = http.get(f"/containers/{cuid}/logs", params={"replica": 4})
        assert resp.status_code == 404 and resp.json()["code"] == "REPLICA_NOT_FOUND"
        frames = asyncio.run(_terminal(server, cuid, "cmd=hostname&replica=4"))
        assert finals(frames)[-1]["error"]["code"] == "REPLICA_NOT_FOUND"

        events = http.get("/events", params={"cuid": cuid, "type": "container.scaled"})
        assert [e["details"]["replicas"] for e in events.json()["events"]] == [3]

    # The count survives a restart of Dockyard, a restart and a PATCH (a recreate).
    server.stop()
    server.start()
    with _client(server) as http:
        one = http.get(f"/containers/{cuid}").json()
        assert _urls(one) == urls
        # The list shows each replica as the single read does (one engine call a page).
        listed = http.get("/containers").json()["containers"]
        assert [c["replicas"] for c in listed if c["cuid"] == cuid] == [one["replicas"]]
        assert http.post(f"/containers/{cuid}/restart").status_code == 200
        resp = http.patch(f"/containers/{cuid}", json={"env": {"AFTER": "patch"}})
        assert resp.status_code == 200, resp.text
        assert _urls(resp.json()) == urls
        assert len(project_containers(cuid)) == 3
        assert len(set(_hostnames(urls))) == 3

        resp = _scale(http, cuid, count=1)
        assert resp.status_code == 200, resp.text
        assert [r["index"] for r in resp.json()["replicas"]] == [1]
        assert len(project_containers(cuid)) == 1
        assert _hostnames(urls[:1])

        # The ports given back are drawn again by the next scale.
        resp = _scale(http, cuid, replicas=2)
        assert resp.status_code == 200, resp.text
        assert len(set(_urls(resp.json()))) == 2
        assert http.delete(f"/containers/{cuid}").status_code == 204
        assert not project_containers(cuid)


def test_scale_refusals(server: Server) -> None:
    with _client(server) as http:
        body = {"image": BUSYBOX, "command": "sleep 3600", "start": True}
        cuid = http.post("/containers", json=body).json()["cuid"]

        resp = _scale(http, cuid, replicas=2, count=3)
        assert resp.status_code == 400 and resp.json()["code"] == "CONFLICTING_FIELDS"
        for wanted in (0, 11):
            resp = _scale(http, cuid, replicas=wanted)
            assert resp.status_code == 400 and resp.json()["code"] == "INVALID_REPLICAS"
        resp = _scale(http, cuid)
        assert resp.status_code == 400
        missing = "c00000000-0000-4000-8000-000000000000"
        assert _scale(http, missing, replicas=2).status_code == 404

        # Replicas 2..N need their own host ports: a fixed one cannot be shared.
        fixed = free_port()
        ports = [{"host": fixed, "container": 80}]
        pinned = http.post("/containers", json={**body, "ports": ports}).json()["cuid"]
        resp = _scale(http, pinned, replicas=2)
        assert resp.status_code == 409 and resp.json()["code"] == "PORT_NOT_SHAREABLE"
        assert len(project_containers(pinned)) == 1

        # Quotas count replicas: two containers' worth is all this account may run.
        resp = http.post(
            "/accounts",
            json={
                "username": "rita",
                "password": "rita-password",
                "role": "user",
                "quota": {"max_containers": 2},
            },
        )
        assert resp.status_code == 201, resp.text
    with _client(server, ("rita", "rita-password")) as rita:
        own = rita.post("/containers", json=body).json()["cuid"]
        resp = _scale(rita, own, replicas=3)
        assert resp.status_code == 409 and resp.json()["code"] == "QUOTA_EXCEEDED"
        assert [r["index"] for r in rita.get(f"/containers/{own}").json()["replicas"]] == [1]
        assert len(project_containers(own)) == 1
        assert _scale(rita, own, replicas=2).status_code == 200
        resp = rita.post("/containers", json=body)
        assert resp.status_code == 409 and resp.json()["code"] == "QUOTA_EXCEEDED"


def test_the_count_query_is_seed_004s_form(server: Server) -> None:
    with _client(server) as http:
        cuid = http.post(
            "/containers", json={"image": BUSYBOX, "command": "sleep 3600", "start": True}
        ).json()["cuid"]
        resp = http.post(f"/containers/{cuid}/scale?{urllib.parse.urlencode({'count': 2})}")
        assert resp.status_code == 200, resp.text
        assert [r["status"] for r in resp.json()["replicas"]] == ["running", "running"]
        stopped = http.post(f"/containers/{cuid}/stop").json()
        assert [r["status"] for r in stopped["replicas"]] == ["exited", "exited"]
        started = http.post(f"/containers/{cuid}/start").json()
        assert [r["status"] for r in started["replicas"]] == ["running", "running"]
