"""The engine registry without Docker: addresses, the watcher's transitions, sealed TLS
files, the cluster's sums, and /engines through the application (a fake local engine)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import httpx
import pytest

from dockyard.domain.access.permissions import BUILTIN_ROLES, Permission
from dockyard.domain.engines.cluster import ContainerUse, cluster_info
from dockyard.domain.engines.models import (
    EngineFacts,
    EngineHealth,
    EngineKind,
    EngineRecord,
    EngineView,
    check_addr,
)
from dockyard.domain.engines.watcher import EngineWatcher
from dockyard.domain.models import Resources
from dockyard.domain.recording import Change
from dockyard.errors import EngineUnavailableError, ValidationError
from tests.conftest import FakeWorld

PEM_KEY = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n"
PEM_CERT = "-----BEGIN CERTIFICATE-----\nCLIENT-CERT\n-----END CERTIFICATE-----\n"
PEM_CA = "-----BEGIN CERTIFICATE-----\nTHE-CA\n-----END CERTIFICATE-----\n"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("addr", "stored"),
    [
        ("unix:///run/dockyard-eng-1.sock", "unix:///run/dockyard-eng-1.sock"),
        ("tcp://10.0.0.5:2376", "tcp://10.0.0.5:2376"),
        ("TCP://Docker.Example.com:2376", "tcp://docker.example.com:2376"),
        ("http://10.1.2.3:2375", "tcp://10.1.2.3:2375"),  # Shipyard's spelling
        ("tcp://[::1]:2376", "tcp://[::1]:2376"),
        ("ssh://deploy@build.example.com", "ssh://deploy@build.example.com"),
        ("ssh://deploy@10.0.0.7:2222", "ssh://deploy@10.0.0.7:2222"),
    ],
)
def test_addresses_engines_may_have(addr: str, stored: str) -> None:
    assert check_addr(addr) == stored


@pytest.mark.parametrize(
    "addr",
    [
        "unix://run/relative.sock",
        "unix:///run/../etc/x.sock",
        "tcp://10.0.0.5",  # no port
        "tcp://10.0.0.5:99999",
        "tcp://user:pw@10.0.0.5:2376",
        "tcp://10.0.0.5:2376/path",
        "ssh://build.example.com",  # no user
        "ssh://u:pw@build.example.com",
        "ftp://x:1",
        "10.0.0.5:2376",
        "tcp://bad_host!:2376",
        "unix:///run/x\n.sock",
    ],
)
def test_addresses_refused(addr: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_addr(addr)
    assert err.value.code == "INVALID_ENGINE_ADDR"


FACTS = EngineFacts("ID1", "20.10.24", "1.41", "linux", 4, 8 * 1024**3, 1, 0, 2, 5)


class ScriptedProbe:
    """Answers as the test says: facts, or an engine that cannot be reached."""

    def __init__(self) -> None:
        self.up = True
        self.closed = False

    async def probe(self) -> EngineFacts:
        if not self.up:
            raise EngineUnavailableError("the Docker engine cannot be reached")
        return FACTS

    async def close(self) -> None:
        self.closed = True


class ListRecorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def record(self, change: Change) -> None:
        self.changes.append(change)


def record(engine_id: str = "eng1") -> EngineRecord:
    return EngineRecord(
        engine_id, "unix:///x.sock", EngineKind.REMOTE, {}, None, None, None, False, NOW, NOW
    )


async def test_watcher_marks_unreachable_and_healthy_again() -> None:
    probe, recorder = ScriptedProbe(), ListRecorder()
    watcher = EngineWatcher(lambda r, t: probe, interval=60, timeout=1, recorder=recorder)
    await watcher.watch(record(), None)
    assert watcher.health("eng1").reachable is None  # not polled yet

    first = await watcher.poll("eng1")
    assert first.reachable and first.facts == FACTS and first.last_seen is not None
    assert recorder.changes == []  # a first healthy answer is no news

    probe.up = False
    down = await watcher.poll("eng1")
    assert down.reachable is False
    assert down.facts == FACTS and down.last_seen == first.last_seen  # what was last seen
    assert "cannot be reached" in (down.last_error or "")
    await watcher.poll("eng1")  # still down: no second event

    probe.up = True
    assert (await watcher.poll("eng1")).reachable
    assert [c.action for c in recorder.changes] == ["engine.unreachable", "engine.healthy"]
    assert all(c.resource == "eng1" and c.owner is None for c in recorder.changes)

    await watcher.unwatch("eng1")
    assert probe.closed and watcher.health("eng1") == EngineHealth()


async def test_watcher_polls_on_its_interval_with_a_deadline() -> None:
    class Stuck(ScriptedProbe):
        async def probe(self) -> EngineFacts:
            await asyncio.Event().wait()  # a frozen engine
            raise AssertionError

    recorder = ListRecorder()
    watcher = EngineWatcher(lambda r, t: Stuck(), interval=0.01, timeout=0.05, recorder=recorder)
    await watcher.watch(record(), None)
    watcher.start()
    try:
        async with asyncio.timeout(5):
            while not recorder.changes:
                await asyncio.sleep(0.01)
    finally:
        await watcher.stop()
    assert recorder.changes[0].action == "engine.unreachable"
    assert watcher.health("eng1").last_error == "no answer in time"


def view(engine_id: str, cpus: float | None, memory: int | None, images: int) -> EngineView:
    facts = EngineFacts("", "v", "1.41", "linux", 2, 4 * 1024**3, 0, 0, 0, images)
    rec = EngineRecord(
        engine_id, f"unix:///{engine_id}", EngineKind.REMOTE, {}, cpus, memory, None,
        False, NOW, NOW,
    )  # fmt: skip
    return EngineView(rec, EngineHealth(True, facts, NOW, None, NOW))


def test_cluster_totals_are_the_sums_of_the_engines() -> None:
    views = [view("local", None, None, 3), view("e1", 8.0, 16 * 1024**3, 2)]
    uses = [
        ContainerUse("local", "running", 0.5, "256m"),
        ContainerUse("local", "exited", None, None),  # the defaults: 1 cpu, 512m
        ContainerUse("local", "missing", 4.0, "4g"),  # holds nothing
        ContainerUse("e1", "running", 2.0, "1g"),
    ]
    info = cluster_info(views, uses, Resources(cpus=1.0, memory="512m"))
    local, e1 = info.engines
    assert (local.cpus, local.memory) == (2.0, 4 * 1024**3)  # as reported
    assert (e1.cpus, e1.memory) == (8.0, 16 * 1024**3)  # as declared
    assert local.reserved_cpus == 1.5 and local.reserved_memory == 768 * 1024**2
    assert local.containers == {"running": 1, "exited": 1, "missing": 1}
    total = info.total
    assert total.cpus == local.cpus + e1.cpus
    assert total.memory == local.memory + e1.memory
    assert total.reserved_cpus == local.reserved_cpus + e1.reserved_cpus
    assert total.reserved_memory == local.reserved_memory + e1.reserved_memory
    assert total.images == 5 and total.container_count == 4


def test_engines_are_the_admins_by_default() -> None:
    for role in ("user", "viewer"):
        assert Permission.ENGINES_READ not in BUILTIN_ROLES[role]
        assert Permission.ENGINES_MANAGE not in BUILTIN_ROLES[role]
    assert {Permission.ENGINES_READ, Permission.ENGINES_MANAGE} <= BUILTIN_ROLES["admin"]


async def test_tls_files_are_sealed_and_never_returned(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    body = {
        "id": "tls1",
        "addr": "tcp://192.0.2.10:2376",
        "labels": {"region": "eu"},
        "tls": {"ca": PEM_CA, "cert": PEM_CERT, "key": PEM_KEY},
    }
    resp = await fake_client.post("/engines", json=body)
    assert resp.status_code == 201, resp.text
    shown = resp.json()
    assert shown["tls"] is True and shown["status"] == "unreachable"  # the PEMs are fake
    assert shown["kind"] == "remote" and shown["labels"] == {"region": "eu"}
    for text in (resp.text, (await fake_client.get("/engines")).text):
        assert "TOP-SECRET" not in text and "CLIENT-CERT" not in text
    db = sqlite3.connect(fake_world.settings.data_dir / "dockyard.db")
    try:
        (sealed,) = db.execute("SELECT tls FROM engines WHERE id = 'tls1'").fetchone()
    finally:
        db.close()
    assert sealed.startswith(b"v1") and b"TOP-SECRET" not in sealed


async def test_engine_api_rules(fake_client: httpx.AsyncClient) -> None:
    listed = (await fake_client.get("/engines")).json()["engines"]
    assert [e["id"] for e in listed] == ["local"]
    assert listed[0]["status"] == "healthy" and listed[0]["kind"] == "local"

    plain = {"id": "plain", "addr": "tcp://127.0.0.1:2375"}
    resp = await fake_client.post("/engines", json=plain)
    assert resp.status_code == 400 and resp.json()["code"] == "ENGINE_TLS_REQUIRED"

    resp = await fake_client.delete("/engines/local")
    assert resp.status_code == 409 and resp.json()["code"] == "ENGINE_LOCAL"

    huge = {"addr": "unix:///x.sock", "memory": 2**70}  # more than the database holds
    assert (await fake_client.post("/engines", json=huge)).status_code == 400

    # Shipyard's body: memory in MiB, labels a list, empty TLS fields.
    seed = {
        "ssl_cert": "",
        "ssl_key": "",
        "ca_cert": "",
        "engine": {
            "id": "gone",
            "addr": "unix:///nonexistent/docker.sock",
            "cpus": 4.0,
            "memory": 8192,
            "labels": ["dev", "region=eu"],
        },
    }
    resp = await fake_client.post("/engines", json=seed)
    assert resp.status_code == 201, resp.text
    added = resp.json()
    assert added["memory"] == 8192 * 1024**2 and added["cpus"] == 4.0
    assert added["labels"] == {"dev": "", "region": "eu"}
    assert added["engine"]["memory"] == 8192 and added["engine"]["labels"] == ["dev", "region=eu"]
    resp = await fake_client.post("/engines", json=seed)
    assert resp.status_code == 409 and resp.json()["code"] == "ENGINE_EXISTS"

    drained = (await fake_client.post("/engines/gone/drain")).json()
    assert drained["draining"] is True
    patched = (await fake_client.patch("/engines/gone", json={"cpus": None, "labels": {}})).json()
    assert patched["declared_cpus"] is None and patched["labels"] == {}

    assert (await fake_client.delete("/engines/gone")).status_code == 204
    assert (await fake_client.get("/engines/gone")).status_code == 404

    info = (await fake_client.get("/cluster/info")).json()
    assert info["engine_count"] == 1 and info["total"]["id"] == "total"
