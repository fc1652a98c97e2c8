"""Placement end to end: the real server and engine (issue 12, docs/engines.md).

The local engine given a capacity takes containers until it is full, then answers
409 NO_CAPACITY with its reason; constraints on its labels place there or nowhere; a
drained engine takes nothing; concurrent creates never overcommit it. An engine whose
socket does not exist is listed as unreachable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.server import ServeFactory


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/containers", json={"image": BUSYBOX, "resources": {"cpus": 0.5}, **body})


def reasons(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 409, resp.text
    error = resp.json()
    assert error["code"] == "NO_CAPACITY" and error["error"] == "conflict", error
    return {e["engine"]: e["reason"] for e in error["details"]["engines"]}


def test_capacity_labels_and_draining_decide_where_a_create_goes(serve: ServeFactory) -> None:
    server = serve()
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=120)
    try:
        assert admin.patch("/engines/local", json={"cpus": 1}).status_code == 200
        first, second = create(admin), create(admin)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        assert first.json()["engine"] == second.json()["engine"] == "local"
        full = create(admin)
        assert reasons(full) == {"local": "cpu"}
        assert "not enough cpu (free 0 of 1" in full.json()["message"]
        info = admin.get("/cluster/info").json()
        assert info["engines"][0]["reserved_cpus"] == 1.0
        # Room again once one goes.
        assert admin.delete(f"/containers/{first.json()['cuid']}").status_code == 204
        assert create(admin, engine="local").status_code == 201

        admin.patch("/engines/local", json={"cpus": None, "labels": {"region": "eu"}})
        placed = create(admin, constraints={"region": "eu"})
        assert placed.status_code == 201 and placed.json()["engine"] == "local"
        ghost = admin.post(
            "/engines",
            json={"id": "ghost", "addr": "unix:///run/dockyard-no-such-engine.sock",
                  "labels": {"region": "us"}},
        )  # fmt: skip
        assert ghost.status_code == 201 and ghost.json()["status"] == "unreachable"
        assert reasons(create(admin, constraints={"region": "us"})) == {
            "local": "labels",
            "ghost": "unreachable",
        }
        unknown = create(admin, engine="nowhere")
        assert unknown.status_code == 400 and unknown.json()["code"] == "UNKNOWN_ENGINE"

        assert admin.post("/engines/local/drain").status_code == 200
        assert reasons(create(admin))["local"] == "draining"
        assert admin.post("/engines/local/undrain").status_code == 200
        assert create(admin).status_code == 201
    finally:
        admin.close()


def test_concurrent_creates_never_overcommit_an_engine(serve: ServeFactory) -> None:
    server = serve()
    admin = httpx.Client(base_url=server.url, headers=basic(*ADMIN), timeout=300)
    try:
        assert admin.patch("/engines/local", json={"cpus": 2}).status_code == 200
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda _: create(admin), range(10)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] * 4 + [409] * 6, [a.text for a in answers]
        listed = admin.get("/containers").json()["containers"]
        assert len(listed) == 4
        assert admin.get("/cluster/info").json()["total"]["reserved_cpus"] == 2.0
    finally:
        admin.close()
