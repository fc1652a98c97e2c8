"""SIGKILL the real server in the middle of creates; after a restart, no ghost remains."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker
from tests.server import Server


async def test_sigkill_mid_creates_leaves_no_ghost(server: Server, tmp_path: Path) -> None:
    headers = basic(*ADMIN)
    accepted: list[str] = []

    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:

        async def one() -> None:
            try:
                resp = await client.post(
                    "/containers", json={"image": BUSYBOX, "command": "sleep 600", "start": True}
                )
            except httpx.HTTPError:
                return  # the server died under this request
            if resp.status_code == 201:
                accepted.append(resp.json()["cuid"])

        tasks = [asyncio.create_task(one()) for _ in range(12)]
        # Kill once some creates have answered and others are still in flight.
        for _ in range(600):
            if len(accepted) >= 2:
                break
            await asyncio.sleep(0.02)
        server.kill()
        await asyncio.gather(*tasks)
    assert len(accepted) >= 2

    server.start()
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        listed = (await client.get("/containers", params={"limit": 500})).json()["containers"]
        by_cuid = {c["cuid"]: c for c in listed}
        # Every create that answered 201 survived, and its container exists and runs.
        for cuid in accepted:
            assert by_cuid[cuid]["status"] == "running", by_cuid[cuid]
        # No record is left half-made: each is either a real container or marked failed.
        for c in listed:
            assert c["status"] in ("created", "running", "failed"), c
        # Every labelled project in the engine that belongs to this server has a record.
        data = str(tmp_path / "data" / "containers")
        engine_projects = {
            line.split()[1]
            for line in docker(
                "ps",
                "-a",
                "--format",
                '{{.Label "com.docker.compose.project.working_dir"}} {{.Label "dockyard.cuid"}}',
            ).splitlines()
            if line.startswith(data)
        }
        assert engine_projects <= set(by_cuid)
        # And no folder without a record.
        assert set(os.listdir(data)) <= set(by_cuid)
        # Recovered containers can be driven as usual.
        for cuid in list(by_cuid):
            assert (await client.delete(f"/containers/{cuid}")).status_code == 204
        assert os.listdir(data) == []
