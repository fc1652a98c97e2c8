"""Issue 11 through the API with a fake engine: publish_all and drawn host ports, owner
on create and ?owner= on lists, PATCH status, restart values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from dockyard.adapters.compose.failures import classify
from dockyard.errors import ComposeError
from tests.conftest import FakeWorld, basic

IMAGE = "busybox:test"


def _as(world: FakeWorld, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app),
        base_url="http://test",
        headers=basic(name, f"{name}-password"),
    )


async def _user(client: httpx.AsyncClient, name: str, **extra: Any) -> None:
    body = {"username": name, "password": f"{name}-password", "role": "user", **extra}
    resp = await client.post("/accounts", json=body)
    assert resp.status_code == 201, resp.text


def _hosts(body: dict[str, Any]) -> list[int]:
    return [p["host"] for p in body["ports"]]


def _images(world: FakeWorld) -> Any:
    return world.app.state.runtime.images


async def test_publish_all_maps_every_exposed_port(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    _images(fake_world).exposed[IMAGE] = ("8000/tcp", "53/udp", "9000/tcp")
    resp = await fake_client.post(
        "/containers",
        json={
            "image": IMAGE,
            "publish_all": True,
            "ports": [{"container": 9000, "host": 20999}, {"container": 7000, "host": None}],
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    by_container = {(p["container"], p["protocol"]): p for p in body["ports"]}
    assert set(by_container) == {(9000, "tcp"), (7000, "tcp"), (8000, "tcp"), (53, "udp")}
    assert by_container[(9000, "tcp")]["host"] == 20999  # the client's own mapping wins
    for port in body["ports"]:
        assert 20000 <= port["host"] <= 29999
        if port["protocol"] == "tcp":
            assert port["url"] == f"http://127.0.0.1:{port['host']}"
        else:
            assert port["url"] is None
    assert len(set(_hosts(body))) == 4 and body["publish_all"] is True
    # Compose publishes exactly those.
    doc = fake_world.compose.documents[body["cuid"]]
    assert sorted(int(p["published"]) for p in doc["services"]["app"]["ports"]) == sorted(
        _hosts(body)
    )
    # Held: nobody else gets them while it exists; its delete frees them.
    taken = by_container[(8000, "tcp")]["host"]
    clash = {"image": IMAGE, "ports": [{"container": 1, "host": taken}]}
    resp = await fake_client.post("/containers", json=clash)
    assert resp.status_code == 409 and resp.json()["code"] == "PORT_IN_USE"
    assert (await fake_client.delete(f"/containers/{body['cuid']}")).status_code == 204
    resp = await fake_client.post("/containers", json=clash)
    assert resp.status_code == 201, resp.text


async def test_a_failed_create_releases_its_ports(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    wanted = {"image": IMAGE, "ports": [{"container": 80, "host": 21000}], "start": True}
    fake_world.compose.fail_next = "Error response from daemon: boom"
    assert (await fake_client.post("/containers", json=wanted)).status_code == 500
    assert (await fake_client.get("/containers")).json()["containers"] == []
    resp = await fake_client.post("/containers", json=wanted)
    assert resp.status_code == 201, resp.text


async def test_a_drawn_port_the_engine_cannot_bind_is_drawn_again(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient, monkeypatch: Any
) -> None:
    compose = fake_world.compose
    real_up = compose.up
    refused: list[int] = []

    async def up(project: str, project_dir: Path) -> None:
        published = compose.documents[project]["services"]["app"]["ports"][0]["published"]
        if not refused:  # something outside Dockyard holds the first one drawn
            refused.append(int(published))
            stderr = f"Bind for 0.0.0.0:{published} failed: port is already allocated"
            raise classify(ComposeError("docker compose up failed", stderr=stderr))
        await real_up(project, project_dir)

    monkeypatch.setattr(compose, "up", up)
    resp = await fake_client.post(
        "/containers", json={"image": IMAGE, "ports": [{"container": 80}], "start": True}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "running" and _hosts(resp.json())[0] != refused[0]
    # A fixed port the engine refuses is the client's to change: a clear 409.
    refused.clear()
    resp = await fake_client.post(
        "/containers",
        json={"image": IMAGE, "ports": [{"container": 80, "host": 21001}], "start": True},
    )
    assert resp.status_code == 409 and resp.json()["code"] == "PORT_IN_USE"


async def test_patch_ports_allocates_and_releases(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    one = (await fake_client.post("/containers", json={"image": IMAGE})).json()
    two = (
        await fake_client.post(
            "/containers", json={"image": IMAGE, "ports": [{"container": 80, "host": 21100}]}
        )
    ).json()
    resp = await fake_client.patch(
        f"/containers/{one['cuid']}/ports", json={"ports": [{"container": 80, "host": 21100}]}
    )
    assert resp.status_code == 409 and resp.json()["code"] == "PORT_IN_USE"
    resp = await fake_client.patch(
        f"/containers/{one['cuid']}/ports", json={"ports": [{"container": 80, "host": None}]}
    )
    assert resp.status_code == 200, resp.text
    drawn = _hosts(resp.json())[0]
    assert 20000 <= drawn <= 29999
    # The same request again keeps the port it has.
    again = await fake_client.patch(
        f"/containers/{one['cuid']}/ports", json={"ports": [{"container": 80}]}
    )
    assert _hosts(again.json()) == [drawn]
    # two gives its port up: one may take it now, and drawn is free again.
    resp = await fake_client.patch(f"/containers/{two['cuid']}/ports", json={"ports": []})
    assert resp.status_code == 200
    resp = await fake_client.patch(
        f"/containers/{one['cuid']}/ports", json={"ports": [{"container": 80, "host": 21100}]}
    )
    assert resp.status_code == 200, resp.text
    resp = await fake_client.patch(
        f"/containers/{two['cuid']}/ports", json={"ports": [{"container": 80, "host": drawn}]}
    )
    assert resp.status_code == 200, resp.text
    # The reserved rules still hold for fixed ports.
    resp = await fake_client.patch(
        f"/containers/{two['cuid']}/ports", json={"ports": [{"container": 80, "host": 2375}]}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "PORT_NOT_ALLOWED"


async def test_admins_create_for_another_account_under_its_quota(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    await _user(fake_client, "bob", quota={"max_containers": 1})
    resp = await fake_client.post("/containers", json={"image": IMAGE, "owner": "bob"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["owner"] == "bob"
    resp = await fake_client.post("/containers", json={"image": IMAGE, "owner": "bob"})
    assert resp.status_code == 409 and resp.json()["code"] == "QUOTA_EXCEEDED"
    resp = await fake_client.post("/containers", json={"image": IMAGE, "owner": "nobody"})
    assert resp.status_code == 400 and resp.json()["code"] == "UNKNOWN_OWNER"
    mine = await fake_client.post("/containers", json={"image": IMAGE})
    assert mine.json()["owner"] == "admin"

    async with _as(fake_world, "bob") as bob:
        resp = await bob.post("/containers", json={"image": IMAGE, "owner": "admin"})
        assert resp.status_code == 403 and resp.json()["code"] == "PERMISSION_DENIED"
        # bob's own container is visible to bob
        listed = (await bob.get("/containers")).json()["containers"]
        assert [c["owner"] for c in listed] == ["bob"]
        assert (await bob.get("/containers?owner=bob")).json()["containers"] == listed
        # another account's name lists nothing (never whether it exists)
        assert (await bob.get("/containers?owner=admin")).json()["containers"] == []
        assert (await bob.get("/containers?owner=nobody")).json()["containers"] == []

    owners = [c["owner"] for c in (await fake_client.get("/containers")).json()["containers"]]
    assert sorted(owners) == ["admin", "bob"]
    only_bob = (await fake_client.get("/containers?owner=bob")).json()["containers"]
    assert [c["owner"] for c in only_bob] == ["bob"]


async def test_patch_status_stops_and_starts(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = (await fake_client.post("/containers", json={"image": IMAGE})).json()["cuid"]
    resp = await fake_client.patch(f"/containers/{cuid}", json={"status": "running"})
    assert resp.status_code == 200 and resp.json()["status"] == "running"
    resp = await fake_client.patch(f"/containers/{cuid}", json={"status": "stopped"})
    assert resp.status_code == 200 and resp.json()["status"] == "exited"
    resp = await fake_client.patch(f"/containers/{cuid}", json={"status": "stopped"})
    assert resp.status_code == 200 and resp.json()["status"] == "exited"  # already: no-op
    resp = await fake_client.patch(f"/containers/{cuid}", json={"status": "running", "tags": ["x"]})
    assert resp.status_code == 400 and resp.json()["code"] == "CONFLICTING_FIELDS"
    resp = await fake_client.patch(f"/containers/{cuid}", json={"status": "paused"})
    assert resp.status_code == 400
    assert (await fake_client.get(f"/containers/{cuid}")).json()["tags"] == []


async def test_restart_values(fake_world: FakeWorld, fake_client: httpx.AsyncClient) -> None:
    for value in ("no", "always", "unless-stopped", "on-failure", "on-failure:3"):
        resp = await fake_client.post("/containers", json={"image": IMAGE, "restart": value})
        assert resp.status_code == 201, resp.text
        assert resp.json()["restart"] == value
        doc = fake_world.compose.documents[resp.json()["cuid"]]
        assert doc["services"]["app"]["restart"] == value
    for bad in ("sometimes", "on-failure:", "on-failure:0", "on-failure:x", "always ", "ALWAYS"):
        resp = await fake_client.post("/containers", json={"image": IMAGE, "restart": bad})
        assert resp.status_code == 400, bad
    cuid = resp = (await fake_client.post("/containers", json={"image": IMAGE})).json()["cuid"]
    resp = await fake_client.patch(f"/containers/{cuid}", json={"restart": "on-failure:5"})
    assert resp.status_code == 200 and resp.json()["restart"] == "on-failure:5"
    resp = await fake_client.patch(f"/containers/{cuid}", json={"restart": "never"})
    assert resp.status_code == 400
