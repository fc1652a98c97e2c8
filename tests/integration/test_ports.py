"""Host ports from PORT_RANGE on the real engine (issue 11): 50 concurrent publish_all
creates get 50 distinct host ports that each answer HTTP, a delete releases them, a port
another process holds is skipped, and restart=always brings a dead process back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.docker_helpers import docker, local_image
from tests.integration.conftest import Live, live_app

T = TypeVar("T")


@pytest.fixture(scope="module")
def http_image() -> Iterator[str]:
    """A local image that EXPOSEs 8000 and serves HTTP there (built, never pulled)."""
    with local_image("dockyard-test/http-expose") as ref:
        yield ref


async def until(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll an async condition until it holds (never a bare sleep as synchronisation)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def answers(url: str) -> str:
    """The container's host name, as its server behind ``url`` tells it."""

    async def probe() -> str | None:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                resp = await client.get(url + "/etc/hostname")
        except httpx.HTTPError:
            return None
        return resp.text.strip() if resp.status_code == 200 else None

    return await until(probe, 30, f"{url} to answer")


async def test_fifty_concurrent_publish_all_creates(tmp_path: Path, http_image: str) -> None:
    async with live_app(tmp_path) as live:

        async def create() -> dict[str, Any]:
            return await live.create(image=http_image, publish_all=True, start=True)

        made = await asyncio.gather(*(create() for _ in range(50)))
        mappings = [c["ports"] for c in made]
        assert all(len(m) == 1 and m[0]["container"] == 8000 for m in mappings)
        hosts = {m[0]["host"] for m in mappings}
        assert len(hosts) == 50 and all(20000 <= h <= 29999 for h in hosts)
        # Each url reaches that container's own server.
        names = await asyncio.gather(*(answers(m[0]["url"]) for m in mappings))
        assert len(set(names)) == 50

        results = await asyncio.gather(
            *(live.client.delete(f"/containers/{c['cuid']}") for c in made)
        )
        assert {r.status_code for r in results} == {204}
        ports = live.services.containers.ports
        assert all([await ports._store.held(c["cuid"]) == [] for c in made])
        # A released port is anyone's again, as a fixed port too.
        again = await live.create(
            image=http_image, ports=[{"container": 8000, "host": min(hosts)}], start=True
        )
        assert await answers(again["ports"][0]["url"])


def two_free_ports() -> int:
    """A port p with p and p+1 both free now (in 40000-49999)."""
    for base in range(40000, 49999, 7):
        if all(_free(p) for p in (base, base + 1)):
            return base
    raise AssertionError("no two free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


async def test_a_port_another_process_holds_is_skipped(tmp_path: Path, http_image: str) -> None:
    base = two_free_ports()
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", base))
        squatter.listen()
        async with live_app(tmp_path, port_range=f"{base}-{base + 1}") as live:
            made = await live.create(image=http_image, publish_all=True, start=True)
            assert made["ports"][0]["host"] == base + 1
            assert await answers(made["ports"][0]["url"])
            resp = await live.client.post(
                "/containers", json={"image": http_image, "publish_all": True}
            )
            assert resp.status_code == 409 and resp.json()["code"] == "NO_FREE_PORT"


async def test_restart_always_brings_a_dead_process_back(live: Live) -> None:
    made = await live.create(
        image="dockyard-test/busybox:latest",
        command="sleep 1; exit 3",  # exits by itself: not a manual stop
        restart="always",
        start=True,
    )
    assert made["restart"] == "always"

    async def restarted() -> dict[str, Any] | None:
        body = (await live.client.get(f"/containers/{made['cuid']}")).json()
        return body if (body["restart_count"] or 0) >= 1 else None

    body = await until(restarted, 30, "a restart")
    assert body["restart_count"] >= 1
    status = (await live.client.get(f"/containers/{made['cuid']}/status")).json()
    assert status["restart_count"] >= 1
    policy = docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", f"{made['cuid']}-app-1")
    assert policy.strip() == "always"
