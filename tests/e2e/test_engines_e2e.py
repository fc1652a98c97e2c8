"""Several engines, end to end: the real server, two extra dockerds (tests/engines.py).

Engines are added by their sockets, watched (killed → unreachable, restarted → healthy,
without restarting Dockyard), summed up by /cluster/info, and removed; the local engine
stays; engines are the admins' business."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import ADMIN, basic
from tests.engines import ExtraEngines
from tests.server import ServeFactory

USER = ("uma", "uma-secret-pass-1")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(admin: httpx.Client, engine_id: str) -> str:
    resp = admin.get(f"/engines/{engine_id}")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


def test_engines_added_watched_summed_and_removed(
    serve: ServeFactory, extra_engines: ExtraEngines
) -> None:
    server = serve(engine_poll_interval=0.3, engine_poll_timeout=2)
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=60)
    try:
        # Ours, and Shipyard's body (memory in MiB, labels a list).
        resp = admin.post(
            "/engines",
            json={"id": "eng1", "addr": extra_engines.addr(1), "labels": {"region": "eu"}},
        )
        assert resp.status_code == 201, resp.text
        shipyard = {
            "ssl_cert": "",
            "ssl_key": "",
            "ca_cert": "",
            "engine": {"id": "eng2", "addr": extra_engines.addr(2), "cpus": 1.5,
                       "memory": 1024, "labels": ["dev"]},
        }  # fmt: skip
        resp = admin.post("/engines", json=shipyard)
        assert resp.status_code == 201, resp.text

        engines = {e["id"]: e for e in admin.get("/engines").json()["engines"]}
        assert list(engines) == ["local", "eng1", "eng2"]
        for engine in engines.values():
            assert engine["status"] == "healthy", engine
            assert engine["version"] and engine["api_version"] and engine["last_seen"]
            assert engine["cpus"] > 0 and engine["memory"] > 0
            assert engine["images"] >= 2  # the test images are on every engine
            assert "tls" in engine and engine["tls"] is False
        assert engines["local"]["kind"] == "local" and engines["eng1"]["kind"] == "remote"
        assert len({e["engine_id"] for e in engines.values()}) == 3  # three engines indeed
        assert (engines["eng2"]["cpus"], engines["eng2"]["memory"]) == (1.5, 1024 * 1024**2)
        assert engines["eng2"]["engine"]["memory"] == 1024

        # An engine that dies reads unreachable; restarted, healthy again (no restart here).
        extra_engines.kill(1)
        wait_for("eng1 unreachable", lambda: status_of(admin, "eng1") == "unreachable")
        assert status_of(admin, "eng2") == "healthy" and status_of(admin, "local") == "healthy"
        extra_engines.start()
        wait_for("eng1 healthy", lambda: status_of(admin, "eng1") == "healthy")
        events = admin.get("/events", params={"limit": 500}).json()
        types = [e["type"] for e in events["events"]]
        assert "engine.unreachable" in types and "engine.healthy" in types

        # The cluster: the totals are the sums of the engines (Shipyard's fields too).
        info = admin.get("/cluster/info").json()
        per = info["engines"]
        assert [e["id"] for e in per] == ["local", "eng1", "eng2"]
        for key in ("cpus", "memory", "reserved_cpus", "reserved_memory", "images"):
            assert info["total"][key] == sum(e[key] for e in per), key
        assert info["engine_count"] == 3
        assert info["cpus"] == info["total"]["cpus"]
        assert info["memory"] == info["total"]["memory"] // 1024**2
        assert info["image_count"] == info["total"]["images"]

        # Draining, and removing; the local engine cannot go.
        resp = admin.post("/engines/eng2/drain")
        assert resp.json()["status"] == "draining"
        resp = admin.delete("/engines/local")
        assert resp.status_code == 409 and resp.json()["code"] == "ENGINE_LOCAL"
        for engine_id in ("eng1", "eng2"):
            assert admin.delete(f"/engines/{engine_id}").status_code == 204
        assert admin.get("/engines/eng1").status_code == 404
        assert [e["id"] for e in admin.get("/engines").json()["engines"]] == ["local"]

        # Not a user's business.
        resp = admin.post(
            "/accounts", json={"username": USER[0], "password": USER[1], "role": "user"}
        )
        assert resp.status_code == 201, resp.text
        with httpx.Client(base_url=server.url, headers=basic(*USER), timeout=30) as user:
            for method, path in (
                ("GET", "/engines"),
                ("GET", "/cluster/info"),
                ("POST", "/engines"),
                ("DELETE", "/engines/local"),
            ):
                resp = user.request(method, path, json={"addr": extra_engines.addr(1)})
                assert resp.status_code == 403, (method, path, resp.text)
    finally:
        admin.close()
