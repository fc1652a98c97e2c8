"""Check-in and timers through the API with a fake engine (issue 11): the check-in token
works on its own container's check-in only, the owner may check in, and the timer
fields are in the container object and changeable by PATCH."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from dockyard.api.authz import ROUTE_PERMISSIONS
from tests.conftest import FakeWorld, basic

IMAGE = "busybox:test"


async def _create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    resp = await client.post("/containers", json={"image": IMAGE, **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def _env(world: FakeWorld, cuid: str) -> dict[str, str]:
    """The environment the container is given (its Compose document)."""
    containers = world.app.state.services.containers
    record = await containers.lookup(cuid)
    return dict(containers.document(record)["services"]["app"]["environment"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _anonymous(world: FakeWorld) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://t")


async def test_the_workload_checks_in_with_the_token_from_its_env(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    created = await _create(fake_client, idle_timeout=60)
    assert created["last_activity_at"] is None
    env = await _env(fake_world, created["cuid"])
    assert env["DOCKYARD_CHECKIN_URL"].endswith(f"/containers/{created['cuid']}/check-in")
    token = env["DOCKYARD_CHECKIN_TOKEN"]
    async with _anonymous(fake_world) as anon:
        resp = await anon.post(f"/containers/{created['cuid']}/check-in", headers=_bearer(token))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["idle_timeout"] == 60.0 and body["idle_stop_at"] > body["last_activity_at"]
    shown = (await fake_client.get(f"/containers/{created['cuid']}")).json()
    assert shown["last_activity_at"] == body["last_activity_at"]
    assert "DOCKYARD_CHECKIN_TOKEN" not in shown["env"]  # not part of the client's spec


async def test_the_token_is_refused_on_other_containers_and_every_other_route(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    mine = (await _create(fake_client))["cuid"]
    other = (await _create(fake_client))["cuid"]
    token = (await _env(fake_world, mine))["DOCKYARD_CHECKIN_TOKEN"]
    async with _anonymous(fake_world) as anon:
        resp = await anon.post(f"/containers/{other}/check-in", headers=_bearer(token))
        assert resp.status_code == 401, resp.text
        resp = await anon.post(f"/containers/{mine}/check-in", headers={"X-Service-Key": token})
        assert resp.status_code == 401, resp.text
        checked = 0
        for method, template in ROUTE_PERMISSIONS:
            if method == "WS" or template.endswith("/check-in"):
                continue
            path = template.replace("{cuid}", mine)
            path = re.sub(r"\{[^}]+\}", "x", path)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            resp = await anon.request(method, path, headers=_bearer(token), json=body)
            # 401, or 429 once the failed attempts from this address are throttled
            assert resp.status_code in (401, 429), (method, path, resp.status_code, resp.text)
            checked += 1
        assert checked > 50


async def test_the_owner_checks_in_and_a_viewer_may_not(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = (await _create(fake_client))["cuid"]
    resp = await fake_client.post(f"/containers/{cuid}/check-in")
    assert resp.status_code == 200, resp.text
    assert resp.json()["idle_timeout"] is None and resp.json()["idle_stop_at"] is None
    body = {"username": "vic", "password": "vic-password", "role": "viewer"}
    assert (await fake_client.post("/accounts", json=body)).status_code == 201
    async with _anonymous(fake_world) as anon:
        resp = await anon.post(f"/containers/{cuid}/check-in", headers=basic("vic", "vic-password"))
    assert resp.status_code == 403, resp.text


async def test_timers_in_create_and_patch(fake_client: httpx.AsyncClient) -> None:
    created = await _create(fake_client, ttl=3600, idle_timeout=90)
    cuid = created["cuid"]
    assert created["idle_timeout"] == 90.0 and created["expires_at"] is not None
    resp = await fake_client.patch(
        f"/containers/{cuid}", json={"idle_timeout": None, "expires_at": "2031-01-02T03:04:05Z"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["idle_timeout"] is None
    assert resp.json()["expires_at"].startswith("2031-01-02T03:04:05")
    resp = await fake_client.patch(f"/containers/{cuid}", json={"ttl": None})
    assert resp.json()["expires_at"] is None
    resp = await fake_client.patch(f"/containers/{cuid}", json={"ttl": 10, "expires_at": None})
    assert resp.status_code == 200  # a null expires_at with a ttl: the ttl counts
    for bad in ({"idle_timeout": 0}, {"ttl": -1}, {"expires_at": "2031-01-02T03:04:05"}):
        resp = await fake_client.patch(f"/containers/{cuid}", json=bad)
        assert resp.status_code == 400, (bad, resp.text)
    resp = await fake_client.patch(
        f"/containers/{cuid}", json={"ttl": 10, "expires_at": "2031-01-02T03:04:05Z"}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "CONFLICTING_FIELDS"


@pytest.mark.parametrize("given", [{}, {"idle_timeout": None}])
async def test_idle_timeout_setting_is_the_default(tmp_path: Any, given: dict[str, Any]) -> None:
    world = FakeWorld(tmp_path, idle_timeout=9000)
    async with world.app.router.lifespan_context(world.app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=world.app),
            base_url="http://t",
            headers=basic("admin", "admin-secret-pass"),
        ) as client:
            created = await _create(client, **given)
    assert created["idle_timeout"] == (9000.0 if not given else None)
