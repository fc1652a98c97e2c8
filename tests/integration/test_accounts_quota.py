"""Quotas against the real engine: refused creates and changes leave nothing behind."""

from __future__ import annotations

import os

import httpx

from tests.docker_helpers import BUSYBOX, inspect, project_containers
from tests.integration.conftest import Live


async def test_quota_refusals_leave_running_containers_untouched(live: Live) -> None:
    resp = await live.client.post(
        "/accounts",
        json={
            "username": "quinn",
            "password": "quinn-password",
            "role": "user",
            "quota": {"max_containers": 1, "max_cpus": 0.5, "max_memory": "64m"},
        },
    )
    assert resp.status_code == 201, resp.text
    quinn = httpx.AsyncClient(
        transport=live.client._transport,
        base_url="http://live",
        auth=("quinn", "quinn-password"),
        timeout=120,
    )
    body = {"image": BUSYBOX, "command": "sleep 600", "start": True}
    resp = await quinn.post(
        "/containers", json={**body, "resources": {"cpus": 0.5, "memory": "64m"}}
    )
    assert resp.status_code == 201, resp.text
    cuid = resp.json()["cuid"]
    before = inspect(f"{cuid}-app-1")
    assert before["HostConfig"]["NanoCpus"] == 500_000_000

    resp = await quinn.post(
        "/containers", json={**body, "resources": {"cpus": 0.1, "memory": "8m"}}
    )
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_containers"
    assert os.listdir(live.settings.containers_dir) == [cuid]

    resp = await quinn.patch(f"/containers/{cuid}", json={"resources": {"cpus": 1.0}})
    assert resp.status_code == 409 and resp.json()["details"]["quota"] == "max_cpus"
    after = inspect(f"{cuid}-app-1")
    assert after["Id"] == before["Id"] and after["State"]["Running"]
    assert (await quinn.get(f"/containers/{cuid}")).json()["resources"]["cpus"] == 0.5

    # Within the quota, the change goes through (and recreates the container).
    resp = await quinn.patch(f"/containers/{cuid}", json={"resources": {"cpus": 0.25}})
    assert resp.status_code == 200, resp.text
    assert inspect(f"{cuid}-app-1")["HostConfig"]["NanoCpus"] == 250_000_000
    assert (await quinn.delete(f"/containers/{cuid}")).status_code == 204
    assert project_containers(cuid) == []
    await quinn.aclose()
