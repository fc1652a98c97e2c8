"""Logs, metrics and events through the API with an in-memory engine (no Docker)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dockyard.domain.access.permissions import Principal
from dockyard.domain.models import Role
from dockyard.domain.observe.events import Event, EventFilter, EventService
from dockyard.domain.ports import EngineEvent
from tests.conftest import FakeWorld, basic

ADMIN = Principal("admin", Role.ADMIN.value)


async def _container(client: httpx.AsyncClient, start: bool = True) -> str:
    resp = await client.post("/containers", json={"image": "busybox:test", "start": start})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


async def _user(world: FakeWorld, name: str, role: Role = Role.USER) -> httpx.AsyncClient:
    await world.app.state.services.auth.add_account(name, f"{name}-password", role)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app),
        base_url="http://test",
        headers=basic(name, f"{name}-password"),
    )


async def test_logs_are_text_with_the_query_passed_on(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _container(fake_client)
    fake_world.engine.logs[cuid] = [b"line 1\n", b"line 2\n"]
    resp = await fake_client.get(
        f"/containers/{cuid}/logs",
        params={"tail": "5", "since": "2024-01-20T15:30:00Z", "timestamps": "true"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.text == "line 1\nline 2\n"
    query = fake_world.engine.log_queries[-1]
    assert query.tail == 5 and query.timestamps and not query.follow
    assert query.since == datetime(2024, 1, 20, 15, 30, tzinfo=UTC).timestamp()
    assert query.stdout and query.stderr

    for params, code in [
        ({"tail": "-1"}, "INVALID_TAIL"),
        ({"tail": "lots"}, "INVALID_TAIL"),
        ({"since": "yesterday"}, "INVALID_TIME"),
        ({"stdout": "false", "stderr": "false"}, "INVALID_STREAMS"),
    ]:
        resp = await fake_client.get(f"/containers/{cuid}/logs", params=params)
        assert resp.status_code == 400 and resp.json()["code"] == code, (params, resp.text)


async def test_log_follows_are_bounded(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _container(fake_client)
    logs = fake_world.app.state.services.logs
    per_container = logs.follows.per_key
    fake_world.engine.hold_follow = True
    streams = []
    for _ in range(per_container):
        streams.append(await logs.open(ADMIN, cuid, _follow()))
    assert logs.follows.count(cuid) == per_container
    resp = await fake_client.get(f"/containers/{cuid}/logs", params={"follow": "true"})
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["error"] == "rate_limited" and body["code"] == "TOO_MANY_STREAMS"
    assert body["details"]["scope"] == "container" and resp.headers["retry-after"]
    # A follow that ends (the container stopped) or is closed gives its place back.
    await streams.pop().aclose()
    fake_world.engine.hold_follow = False
    resp = await fake_client.get(f"/containers/{cuid}/logs", params={"follow": "true"})
    assert resp.status_code == 200
    assert logs.follows.count(cuid) == per_container - 1
    # Dropped without a close (a vanished client's generator): released all the same.
    streams.clear()
    assert logs.follows.open == 0


def _follow() -> Any:
    from dockyard.domain.ports import LogQuery

    return LogQuery(follow=True)


async def test_logs_of_others_and_of_the_missing(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    cuid = await _container(fake_client)
    async with await _user(fake_world, "bob") as bob:
        resp = await bob.get(f"/containers/{cuid}/logs")
        assert resp.status_code == 404 and resp.json()["code"] == "CONTAINER_NOT_FOUND"
        resp = await bob.get(f"/containers/{cuid}/metrics")
        assert resp.status_code == 404
    fake_world.engine.containers.pop(cuid)  # vanished from the engine
    resp = await fake_client.get(f"/containers/{cuid}/logs")
    assert resp.status_code == 404 and resp.json()["code"] == "CONTAINER_MISSING"


async def test_metrics_through_the_engine_when_no_cgroup(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    # The fake world has no cgroup reader: the engine's stats, a first one synchronously.
    metrics = fake_world.app.state.services.metrics
    cuid = await _container(fake_client)
    resp = await fake_client.get(f"/containers/{cuid}/metrics")
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert first["source"] == "engine" and first["cpu_percent"] is None
    assert first["memory"] == {
        "used_bytes": 10 * 1024 * 1024,
        "limit_bytes": 64 * 1024 * 1024,
        "percent": 15.62,
    }
    assert first["network"] == {"rx_bytes": 1, "tx_bytes": 2}
    assert first["block_io"] == {"read_bytes": 3, "write_bytes": 4}
    assert first["pids"] == 5 and 0 <= first["sample_age_ms"] < 1000
    assert cuid in metrics.watched
    await metrics.tick()  # the collector's next pass: a second sample, so CPU %
    await asyncio.gather(*list(metrics._tasks))
    second = (await fake_client.get(f"/containers/{cuid}/metrics")).json()
    assert second["cpu_percent"] == 50.0
    assert fake_world.engine.stats_calls[cuid] == 2  # answered from memory, no third call

    stopped = await _container(fake_client, start=False)
    resp = await fake_client.get(f"/containers/{stopped}/metrics")
    assert resp.status_code == 422 and resp.json()["code"] == "CONTAINER_NOT_RUNNING"


async def test_metrics_forget_the_unwanted(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    metrics = fake_world.app.state.services.metrics
    cuid = await _container(fake_client)
    assert (await fake_client.get(f"/containers/{cuid}/metrics")).status_code == 200
    metrics._watches[cuid].wanted -= metrics.idle + 1  # nobody asked for a minute
    await metrics.tick()
    assert cuid not in metrics.watched
    calls = fake_world.engine.stats_calls[cuid]
    await metrics.tick()
    assert fake_world.engine.stats_calls[cuid] == calls


async def test_events_record_actions_and_engine_events(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    events: EventService = fake_world.app.state.services.events
    cuid = await _container(fake_client, start=False)
    assert (await fake_client.post(f"/containers/{cuid}/start")).status_code == 200
    resp = await fake_client.patch(f"/containers/{cuid}", json={"env": {"SECRET": "v"}})
    assert resp.status_code == 200
    events.engine_event(
        EngineEvent(cuid, "die", {"exitCode": "137", "dockyard.owner": "admin"}, None)
    )
    events.engine_event(EngineEvent(cuid, "health_status: healthy", {"dockyard.owner": "admin"}))
    events.engine_event(EngineEvent(cuid, "exec_start: sh", {"dockyard.owner": "admin"}))

    body = (await fake_client.get("/events", params={"cuid": cuid})).json()
    kinds = [e["type"] for e in body["events"]]
    assert kinds == [
        "health_status",
        "die",
        "container.updated",
        "container.action",
        "container.created",
    ]
    health, die, updated, action, created = body["events"]
    assert health["details"] == {"status": "healthy"} and health["source"] == "engine"
    assert die["details"] == {"exit_code": 137} and die["owner"] == "admin"
    assert updated["details"] == {"fields": ["env"]}  # names, never values
    assert action["actor"] == "admin" and action["details"]["action"] == "start"
    assert created["source"] == "api" and created["cuid"] == cuid
    assert [e["id"] for e in body["events"]] == sorted(
        (e["id"] for e in body["events"]), reverse=True
    )

    resp = await fake_client.get("/events", params={"type": "die,container.created"})
    assert [e["type"] for e in resp.json()["events"]] == ["die", "container.created"]
    resp = await fake_client.get("/events", params={"type": "explode"})
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_EVENT_TYPE"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await fake_client.get("/events", params={"since": future})).json()["events"] == []

    # Keyset pages, newest first, and the cursor is checked.
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"cuid": cuid, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await fake_client.get("/events", params=params)).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in body["events"]]
    resp = await fake_client.get("/events", params={"cursor": "nonsense"})
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_CURSOR"
    assert (await fake_client.get("/events", params={"limit": 0})).status_code == 400

    # Deleting records who did it, with the owner, after the container is gone.
    assert (await fake_client.delete(f"/containers/{cuid}")).status_code == 204
    newest = (await fake_client.get("/events", params={"cuid": cuid, "limit": 1})).json()
    assert newest["events"][0]["type"] == "container.deleted"
    assert newest["events"][0]["owner"] == "admin"


async def test_events_of_other_accounts_are_invisible(
    fake_world: FakeWorld, fake_client: httpx.AsyncClient
) -> None:
    mine = await _container(fake_client)
    async with await _user(fake_world, "carol") as carol:
        resp = await carol.post("/containers", json={"image": "busybox:test"})
        theirs = resp.json()["cuid"]
        body = (await carol.get("/events")).json()
        assert {e["cuid"] for e in body["events"]} == {theirs}
        assert (await carol.get("/events", params={"cuid": mine})).json()["events"] == []
    async with await _user(fake_world, "vic", Role.VIEWER) as viewer:
        resp = await viewer.get("/events")
        assert resp.status_code == 200 and resp.json()["events"] == []
    every = (await fake_client.get("/events")).json()  # admins see everyone's
    assert {mine, theirs} <= {e["cuid"] for e in every["events"]}


async def test_follow_streams_new_events_and_resumes(fake_world: FakeWorld) -> None:
    events: EventService = fake_world.app.state.services.events
    events.keepalive = 0.05
    stream = await events.follow(ADMIN, EventFilter(types=("start",)), after=None)
    assert await anext(stream) is None  # nothing new yet: a keep-alive
    events.engine_event(EngineEvent("c1", "stop", {"dockyard.owner": "admin"}))
    events.engine_event(EngineEvent("c1", "start", {"dockyard.owner": "admin"}))
    got = await anext(stream)
    while got is None:
        got = await anext(stream)
    assert isinstance(got, Event) and got.type == "start" and got.cuid == "c1"
    assert events.follows.open == 1
    await stream.aclose()
    assert events.follows.open == 0
    # Resuming after an id (a reconnecting EventSource's Last-Event-ID) replays the rest.
    resumed = await events.follow(ADMIN, EventFilter(), after=got.seq - 2)
    replay = [await anext(resumed), await anext(resumed)]
    assert [e.type for e in replay if e] == ["stop", "start"]
    await resumed.aclose()
    limit = events.follows.total
    held = [await events.follow(ADMIN, EventFilter(), after=None) for _ in range(limit)]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake_world.app), base_url="http://test"
    ) as client:
        resp = await client.get(
            "/events", params={"follow": "true"}, headers=basic("admin", "admin-secret-pass")
        )
        assert resp.status_code == 429 and resp.json()["details"]["scope"] == "total"
    for stream in held:
        await stream.aclose()


async def test_oom_is_remembered(fake_world: FakeWorld) -> None:
    events: EventService = fake_world.app.state.services.events
    owner = {"dockyard.owner": "admin"}
    started = datetime.now(UTC) - timedelta(minutes=1)
    finished = started + timedelta(seconds=30)  # long ago: no waiting for events
    assert not await events.oom_seen("c2", started, finished)
    events.engine_event(EngineEvent("c2", "oom", owner))
    events.engine_event(EngineEvent("c2", "die", {**owner, "exitCode": "137"}))
    assert await events.oom_seen("c2", started, finished)
    later = datetime.now(UTC) + timedelta(seconds=5)  # a later run: that oom is not its own
    assert not await events.oom_seen("c2", later, None)
    await events.flush()
    events._oom.clear()  # a restarted service: from the store
    events._died.clear()
    assert await events.oom_seen("c2", started, finished)


async def test_a_status_read_right_after_the_exit_waits_for_its_events(
    fake_world: FakeWorld,
) -> None:
    events: EventService = fake_world.app.state.services.events
    owner = {"dockyard.owner": "admin"}
    started = datetime.now(UTC) - timedelta(seconds=1)
    finished = datetime.now(UTC)  # the inspect saw the exit; the stream is a little behind

    async def stream_catches_up() -> None:
        await asyncio.sleep(0.05)  # the event stream's delay, simulated
        events.engine_event(EngineEvent("c3", "oom", owner))
        events.engine_event(EngineEvent("c3", "die", {**owner, "exitCode": "137"}))

    task = asyncio.create_task(stream_catches_up())
    assert await events.oom_seen("c3", started, finished, wait=5)
    await task
    # A plain kill (137 without oom): answered once its die arrives, not after the wait.
    t0 = asyncio.get_running_loop().time()
    waiting = asyncio.create_task(events.oom_seen("c4", started, finished, wait=5))
    await asyncio.sleep(0)
    events.engine_event(EngineEvent("c4", "die", {**owner, "exitCode": "137"}))
    assert not await waiting
    assert asyncio.get_running_loop().time() - t0 < 1
