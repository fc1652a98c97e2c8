"""Two Dockyard processes on one PostgreSQL (issue 12): any of them answers, the duties
run once (the engine's events are recorded once, not twice), a quota holds across them,
and when the one running the duties dies the other takes them over."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN
from tests.docker_helpers import remove_projects, require_engine, wait_for
from tests.engines import ExtraEngines
from tests.server import Server, serve_env

PG_URL = os.environ.get("DOCKYARD_TEST_PG_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="DOCKYARD_TEST_PG_URL not set (make test sets it)"
)
BUSYBOX = "dockyard-test/busybox:latest"
DB = "dockyard_replicas"


async def _fresh_database() -> str:
    assert PG_URL and PG_URL != "unavailable", "PostgreSQL for tests did not start"
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB}")
    finally:
        await conn.close()
    return PG_URL.rsplit("/", 1)[0] + f"/{DB}"


async def _leases(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT name, holder FROM leases WHERE expires_at > now()")
    finally:
        await conn.close()
    return {row["name"]: row["holder"] for row in rows}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Server, Server, str]]:
    """Two servers, one DATA_DIR and one database, each with its own output."""
    require_engine()
    url = asyncio.run(_fresh_database())
    data = tmp_path / "data"
    servers = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        env = serve_env(
            work,
            app_user=ADMIN[0],
            app_pass=ADMIN[1],
            network_name="dockyard-test",
            data_dir=data,
            database_url=url,
            lease_ttl=3,
        )
        servers.append(Server(work, env))
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1], url
    finally:
        for server in servers:
            server.stop()
        remove_projects(data / "containers")


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=ADMIN, timeout=60)


def _instance(server: Server) -> str:
    with _client(server) as http:
        return str(http.get("/healthz").json()["instance"])


def test_two_processes_share_the_work_and_hand_over_the_duties(
    pair: tuple[Server, Server, str],
) -> None:
    a, b, url = pair
    ids = {_instance(a): a, _instance(b): b}
    leases = asyncio.run(_leases(url))
    assert {f"instance:{i}" for i in ids} <= set(leases)
    holder = ids[leases["engine:local"]]
    other = b if holder is a else a
    held = {}
    for server in (holder, other):
        with _client(server) as http:
            held[server.port] = set(http.get("/healthz").json()["duties"])
    assert {"engine:local", "deliveries"} <= held[holder.port]
    assert held[holder.port] | held[other.port] == {"engine:local", "deliveries"}

    # Made through one, seen and changed through the other, read back at once.
    with _client(other) as http:
        resp = http.post("/containers", json={"image": BUSYBOX, "command": ["sleep", "600"]})
        assert resp.status_code == 201, resp.text
        cuid = resp.json()["cuid"]
    with _client(holder) as http:
        assert http.post(f"/containers/{cuid}/start").status_code == 200
    with _client(other) as http:
        assert http.get(f"/containers/{cuid}").json()["status"] == "running"
        assert http.post(f"/containers/{cuid}/stop").status_code == 200
    with _client(holder) as http:
        assert http.get(f"/containers/{cuid}").json()["status"] == "exited"
        # The engine's events are followed by one process: one `die` for one stop.
        dies = wait_for(
            lambda: _events(http, cuid, "die") or None, what="the die event of the stop"
        )
        assert len(dies) == 1

    # The duties' holder dies; the other takes them over (the lease expires in 3 s).
    holder.kill()
    with _client(other) as http:
        wait_for(
            lambda: "engine:local" in http.get("/healthz").json()["duties"] or None,
            timeout=30,
            what="the other process to take the duties over",
        )
        assert http.post(f"/containers/{cuid}/start").status_code == 200
        subprocess.run(["docker", "kill", f"{cuid}-app-1"], check=True, capture_output=True)
        wait_for(
            lambda: len(_events(http, cuid, "die")) == 2 or None,
            what="the die of the kill, recorded by the survivor",
        )
        assert http.get(f"/containers/{cuid}").json()["status"] == "exited"


def _events(http: httpx.Client, cuid: str, kind: str) -> list[object]:
    resp = http.get("/events", params={"cuid": cuid, "type": kind})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def _lock_key(name: str) -> int:
    """The advisory lock key of ``Database.exclusive(name)``."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


async def _waiters(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
    finally:
        await conn.close()
    return int(found)


def test_a_quota_holds_across_processes(pair: tuple[Server, Server, str]) -> None:
    """An owner's quota check and insert hold a lock every process sees: while another
    session holds it, a create waits; concurrent creates on both never exceed it."""
    a, b, url = pair
    with _client(a) as http:
        resp = http.post("/accounts", json={"username": "quinn", "password": "quinn-pass-123"})
        assert resp.status_code == 201, resp.text
        resp = http.patch("/accounts/quinn", json={"quota": {"max_containers": 3}})
        assert resp.status_code == 200, resp.text

    def create(server: Server) -> int:
        with httpx.Client(base_url=server.url, auth=("quinn", "quinn-pass-123"), timeout=60) as c:
            return c.post("/containers", json={"image": BUSYBOX}).status_code

    async def held_elsewhere() -> int:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _lock_key("quota:quinn"))
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(None, create, b)
            while not await _waiters(url):  # the create waits for the lock
                await asyncio.sleep(0.05)
            assert not pending.done()
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key("quota:quinn"))
            return await asyncio.wait_for(pending, 60)
        finally:
            await conn.close()

    assert asyncio.run(asyncio.wait_for(held_elsewhere(), 60)) == 201
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, [a, b] * 4))
    assert sorted(codes) == [201] * 2 + [409] * 6
    with _client(b) as http:
        listed = http.get("/containers", params={"owner": "quinn"}).json()["containers"]
        assert len(listed) == 3


def _duties(server: Server) -> set[str]:
    with _client(server) as http:
        return set(http.get("/healthz").json()["duties"])


def test_each_remote_engine_is_a_duty_of_its_own(
    pair: tuple[Server, Server, str], extra_engines: ExtraEngines
) -> None:
    """``engine:<id>`` per remote engine: held by one process each, gained when the
    engine is added and let go when it is removed; a dead holder's pass to the other."""
    a, b, url = pair
    wanted = {"engine:eng1", "engine:eng2"}
    with _client(a) as http:
        for k in (1, 2):
            resp = http.post("/engines", json={"id": f"eng{k}", "addr": extra_engines.addr(k)})
            assert resp.status_code == 201, resp.text

    def every_engine_leased() -> dict[str, str] | None:
        found = asyncio.run(_leases(url))
        return found if wanted <= set(found) else None

    leases = wait_for(every_engine_leased, timeout=30, what="a lease for each remote engine")
    assert _duties(a) & _duties(b) == set()  # each duty runs in one process
    assert wanted <= _duties(a) | _duties(b)

    with _client(b) as http:
        assert http.delete("/engines/eng2").status_code == 204
    wait_for(
        lambda: (
            "engine:eng2" not in _duties(a) | _duties(b)
            and "engine:eng2" not in asyncio.run(_leases(url))
        ),
        timeout=30,
        what="the removed engine's duty and lease gone",
    )

    ids = {_instance(a): a, _instance(b): b}
    holder = ids[leases["engine:eng1"]]
    other = b if holder is a else a
    holder.kill()
    wait_for(
        lambda: "engine:eng1" in _duties(other) or None,
        timeout=30,
        what="the survivor to take engine:eng1",
    )
