"""Logs, metrics, status and events against a real Docker engine.

Streams (``follow=true``) are read through a real HTTP server (uvicorn on 127.0.0.1,
serving the same app), because httpx's ASGI transport buffers whole responses.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from dockyard.adapters.engine import DockerEngine
from dockyard.domain.access.permissions import Principal
from dockyard.domain.containers.compose_doc import container_name
from dockyard.domain.observe.metrics import MetricsService
from tests.conftest import ADMIN, basic, make_settings
from tests.docker_helpers import BUSYBOX, PYTHON, docker, remove_project
from tests.integration.conftest import Live, in_process
from tests.server import free_port

T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    """Poll a condition until it holds (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan already running) behind a real HTTP server."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await until(started, "uvicorn to start", timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def wait_log(live: Live, cuid: str, text: str) -> str:
    async def probe() -> str | None:
        body = (await live.client.get(f"/containers/{cuid}/logs")).text
        return body if text in body else None

    return await until(probe, f"{text!r} in the logs")


async def events_of(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await client.get("/events", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["events"]  # type: ignore[no-any-return]


# -- logs ------------------------------------------------------------------------------


async def test_logs_tail_since_until_timestamps(live: Live) -> None:
    c = await live.create(
        image=BUSYBOX,
        command="for i in $(seq 1 20); do echo line $i; done; sleep 2; echo later; sleep 600",
        start=True,
    )
    cuid = c["cuid"]
    body = await wait_log(live, cuid, "later")
    lines = body.splitlines()
    assert lines[:20] == [f"line {i}" for i in range(1, 21)] and lines[20] == "later"
    assert "\r\n" in body  # a TTY container: the terminal's line ends, one merged stream

    tail = (await live.client.get(f"/containers/{cuid}/logs", params={"tail": "3"})).text
    assert tail.splitlines() == ["line 19", "line 20", "later"]
    assert (await live.client.get(f"/containers/{cuid}/logs", params={"tail": "0"})).text == ""

    stamped = await live.client.get(
        f"/containers/{cuid}/logs", params={"timestamps": "true", "tail": "2"}
    )
    assert stamped.headers["content-type"] == "text/plain; charset=utf-8"
    (last20, later) = stamped.text.splitlines()
    assert last20.endswith(" line 20") and later.endswith(" later")
    t20 = datetime.fromisoformat(last20.split(" ")[0][:26] + "+00:00")
    t_later = datetime.fromisoformat(later.split(" ")[0][:26] + "+00:00")
    assert t_later - t20 >= timedelta(seconds=1.5)

    middle = (t20 + (t_later - t20) / 2).isoformat()
    since = (await live.client.get(f"/containers/{cuid}/logs", params={"since": middle})).text
    assert since.splitlines() == ["later"]
    until_ = (await live.client.get(f"/containers/{cuid}/logs", params={"until": middle})).text
    assert until_.splitlines()[-1] == "line 20" and "later" not in until_
    unix = str(t_later.timestamp() - 0.5)
    assert (
        await live.client.get(f"/containers/{cuid}/logs", params={"since": unix})
    ).text.splitlines() == ["later"]

    # With a TTY there is no separate stderr: it all arrives as stdout.
    only_err = await live.client.get(f"/containers/{cuid}/logs", params={"stdout": "false"})
    assert only_err.status_code == 200 and only_err.text == ""


async def test_logs_follow_streams_until_the_container_stops(live: Live) -> None:
    c = await live.create(
        image=BUSYBOX,
        command="i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
        start=True,
    )
    cuid = c["cuid"]
    async with (
        serving(live.app) as url,
        httpx.AsyncClient(base_url=url, headers=basic(*ADMIN), timeout=60) as http,
    ):
        received = ""
        stopped = False
        started = time.monotonic()
        async with http.stream(
            "GET", f"/containers/{cuid}/logs", params={"follow": "true", "tail": "0"}
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "text/plain; charset=utf-8"
            async for text in resp.aiter_text():
                received += text
                # Lines arrive while the container runs, not at the end.
                if not stopped and received.count("tick") >= 3:
                    stopped = True
                    stop = await live.client.post(f"/containers/{cuid}/stop")
                    assert stop.status_code == 200, stop.text
                assert time.monotonic() - started < 60, "the follow did not end"
        # The stream ended by itself because the container stopped.
        assert stopped
        status = (await live.client.get(f"/containers/{cuid}")).json()["status"]
        assert status == "exited"
        assert live.services.logs.follows.count(cuid) == 0

        # A follow of a stopped container returns what there is and ends.
        resp = await http.get(f"/containers/{cuid}/logs", params={"follow": "true"})
        assert resp.status_code == 200 and "tick 1" in resp.text


async def test_log_follows_are_limited_and_freed_when_clients_leave(live: Live) -> None:
    c = await live.create(image=BUSYBOX, command="echo hello; sleep 600", start=True)
    cuid = c["cuid"]
    await wait_log(live, cuid, "hello")
    follows = live.services.logs.follows
    follows.per_key = 1
    async with serving(live.app) as url:
        async with (
            httpx.AsyncClient(base_url=url, headers=basic(*ADMIN), timeout=60) as first,
            first.stream("GET", f"/containers/{cuid}/logs", params={"follow": "true"}) as resp,
        ):
            assert resp.status_code == 200
            chunks = resp.aiter_text()
            assert "hello" in await anext(chunks)
            assert follows.count(cuid) == 1
            async with httpx.AsyncClient(base_url=url, headers=basic(*ADMIN)) as second:
                refused = await second.get(f"/containers/{cuid}/logs", params={"follow": "true"})
            assert refused.status_code == 429
            assert refused.json()["code"] == "TOO_MANY_STREAMS"
            assert int(refused.headers["retry-after"]) > 0
        # The first client left without the container stopping: its place is given back.

        async def freed() -> bool:
            return follows.count(cuid) == 0

        await until(freed, "the follow session to be released", timeout=15)
        async with (
            httpx.AsyncClient(base_url=url, headers=basic(*ADMIN), timeout=60) as third,
            third.stream("GET", f"/containers/{cuid}/logs", params={"follow": "true"}) as resp,
        ):
            assert resp.status_code == 200


# -- metrics and status ------------------------------------------------------------------


async def test_metrics_show_real_memory_and_cpu(live: Live) -> None:
    memory_hog = await live.create(
        image=PYTHON,
        command=["python3", "-c", "import time\nb = b'x' * (50 << 20)\ntime.sleep(600)"],
        resources={"memory": "256m"},
        start=True,
    )
    spinner = await live.create(image=BUSYBOX, command="while :; do :; done", start=True)

    async def metrics(cuid: str) -> dict[str, Any]:
        resp = await live.client.get(f"/containers/{cuid}/metrics")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def allocated() -> dict[str, Any] | None:
        body = await metrics(memory_hog["cuid"])
        return body if body["memory"]["used_bytes"] > 45 * 1024 * 1024 else None

    body = await allocated() or await until(allocated, "50 MB in use")
    assert body["source"] == "cgroup"
    assert body["memory"]["limit_bytes"] == 256 * 1024 * 1024
    assert 15 < body["memory"]["percent"] <= 100
    assert body["pids"] >= 1
    assert isinstance(body["network"]["rx_bytes"], int)
    assert isinstance(body["block_io"]["read_bytes"], int)
    assert 0 <= body["sample_age_ms"] < 5000
    assert datetime.fromisoformat(body["sampled_at"]).tzinfo is not None

    first = await metrics(spinner["cuid"])  # a fresh sample over a short window
    assert first["sample_age_ms"] < 1000 and first["cpu_percent"] is not None
    best = first["cpu_percent"]

    async def busy() -> float | None:
        nonlocal best
        best = max(best, (await metrics(spinner["cuid"]))["cpu_percent"] or 0.0)
        return best if best > 30 else None

    await until(busy, "a busy loop's CPU % above 30", timeout=20)
    # Answers come from the collector's memory: the sample is younger than a few intervals.
    later = await metrics(spinner["cuid"])
    assert later["sample_age_ms"] < 3000 + 1000 * live.services.metrics.interval
    assert set(live.services.metrics.watched) >= {memory_hog["cuid"], spinner["cuid"]}

    assert (await live.client.post(f"/containers/{spinner['cuid']}/stop")).status_code == 200
    resp = await live.client.get(f"/containers/{spinner['cuid']}/metrics")
    assert resp.status_code == 422 and resp.json()["code"] == "CONTAINER_NOT_RUNNING"


async def test_metrics_through_the_engine_without_cgroups(live: Live) -> None:
    """What a remote engine gets: no cgroup files, the engine's one-shot stats instead."""
    c = await live.create(image=BUSYBOX, command="while :; do :; done", start=True)
    engine = DockerEngine(None, 30)
    try:
        service = MetricsService(live.services.containers, engine, None, interval=0.2)
        admin = Principal(ADMIN[0], "admin")
        first = await service.get(admin, c["cuid"])
        assert first["source"] == "engine" and first["cpu_percent"] is None
        assert first["memory"]["used_bytes"] > 0 and first["pids"] >= 1

        async def busy() -> dict[str, Any] | None:
            await service.tick()
            await asyncio.gather(*service._tasks)
            body = await service.get(admin, c["cuid"])
            return body if (body["cpu_percent"] or 0) > 30 else None

        body = await until(busy, "CPU % from two engine samples", timeout=30)
        assert body["source"] == "engine" and body["sample_age_ms"] < 10_000
    finally:
        await engine.close()


async def test_oom_killed_container(live: Live) -> None:
    c = await live.create(
        image=PYTHON,
        command=["python3", "-c", "b = b'x' * (100 << 20)"],
        resources={"memory": "8m"},
        start=True,
    )
    cuid = c["cuid"]

    async def exited() -> dict[str, Any] | None:
        body = (await live.client.get(f"/containers/{cuid}/status")).json()
        return body if body["status"] == "exited" else None

    status = await until(exited, "the OOM-killed container to exit")
    assert status["exit_code"] == 137
    assert status["oom_killed"] is True

    async def oom_event() -> list[dict[str, Any]] | None:
        return await events_of(live.client, cuid=cuid, type="oom") or None

    assert (await until(oom_event, "an oom event"))[0]["source"] == "engine"

    async def died() -> list[dict[str, Any]] | None:
        return await events_of(live.client, cuid=cuid, type="die") or None

    assert (await until(died, "a die event"))[0]["details"] == {"exit_code": 137}


async def test_health_from_the_engine(live: Live) -> None:
    tag = f"dockyard-test/busybox-health:{os.getpid()}"
    dockerfile = (
        f"FROM {BUSYBOX}\nHEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD test -e /tmp/ok\n"
    )
    build = await asyncio.create_subprocess_exec(
        "docker",
        "build",
        "-q",
        "-t",
        tag,
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the classic builder never pulls FROM
    )
    _, err = await asyncio.wait_for(build.communicate(dockerfile.encode()), 120)
    assert build.returncode == 0, err.decode()
    try:
        c = await live.create(image=tag, command="sleep 600", start=True)
        cuid = c["cuid"]

        async def health(wanted: str) -> bool:
            body = (await live.client.get(f"/containers/{cuid}/status")).json()
            return bool(body["health"] == wanted)

        await until(lambda: health("unhealthy"), "health: unhealthy")
        docker("exec", "-u", "0", container_name(cuid), "touch", "/tmp/ok")
        await until(lambda: health("healthy"), "health: healthy")

        async def healthy_event() -> bool:
            found = await events_of(live.client, cuid=cuid, type="health_status")
            return any(e["details"] == {"status": "healthy"} for e in found)

        await until(healthy_event, "a health_status event")
        assert (await live.client.delete(f"/containers/{cuid}")).status_code == 204
    finally:
        docker("rmi", "-f", tag, check=False)


# -- events ------------------------------------------------------------------------------


async def test_events_filters_follow_and_privacy(live: Live) -> None:
    dave = await live.user_client("dave")
    try:
        resp = await dave.post(
            "/containers", json={"image": BUSYBOX, "command": "sleep 600", "start": True}
        )
        assert resp.status_code == 201, resp.text
        mine = resp.json()["cuid"]
        theirs = (await live.create(image=BUSYBOX, command="sleep 600", start=True))["cuid"]

        async def engine_start() -> list[dict[str, Any]] | None:
            return await events_of(dave, cuid=mine, type="start") or None

        started = await until(engine_start, "the engine's start event")
        assert started[0]["owner"] == "dave" and started[0]["source"] == "engine"
        kinds = {e["type"] for e in await events_of(dave, cuid=mine)}
        assert {"create", "start", "container.created"} <= kinds
        created = await events_of(dave, cuid=mine, type="container.created")
        assert created[0]["actor"] == "dave"
        # Another account's containers do not exist for dave, in events either.
        assert await events_of(dave, cuid=theirs) == []
        assert {e["cuid"] for e in await events_of(dave)} == {mine}
        assert theirs in {e["cuid"] for e in await events_of(live.client, type="start")}

        async with (
            serving(live.app) as url,
            httpx.AsyncClient(base_url=url, headers=dave.headers, timeout=60) as http,
            http.stream(
                "GET", "/events", params={"follow": "true", "cuid": mine, "type": "start,die"}
            ) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(":")  # the stream is open
            assert (await dave.post(f"/containers/{mine}/restart")).status_code == 200
            got: list[dict[str, Any]] = []
            event_id = None
            async with asyncio.timeout(30):
                async for line in lines:
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        assert event["id"] == event_id
                        got.append(event)
                        if event["type"] == "start":
                            break
            assert got[-1]["type"] == "start" and got[-1]["cuid"] == mine
            assert {e["type"] for e in got} <= {"start", "die"}
    finally:
        await dave.aclose()


async def test_event_history_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cuid = None
    try:
        async with in_process(settings) as first:
            resp = await first.client.post(
                "/containers", json={"image": BUSYBOX, "command": "sleep 600", "start": True}
            )
            assert resp.status_code == 201, resp.text
            cuid = resp.json()["cuid"]

            async def recorded() -> list[dict[str, Any]] | None:
                return await events_of(first.client, cuid=cuid, type="start") or None

            await until(recorded, "the start event")
            before = await events_of(first.client, cuid=cuid)
        async with in_process(settings) as second:  # a new process on the same DATA_DIR
            after = await events_of(second.client, cuid=cuid)
            kept = {e["id"] for e in before}
            assert [e for e in after if e["id"] in kept] == before
            assert (await second.client.delete(f"/containers/{cuid}")).status_code == 204
    finally:
        if cuid:
            remove_project(cuid)
