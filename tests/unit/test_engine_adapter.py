"""The engine adapter over recorded Engine API answers, with no Docker.

``DockerEngine`` talks to a small aiohttp server on a unix socket (the seam is the
transport: the adapter's own client, sockets and error paths run for real) that answers
with JSON recorded from Docker 20.10 (``recorded/engine/``, taken with
``curl --unix-socket /var/run/docker.sock`` on a throwaway labelled container).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import pytest
from aiohttp import web

from dockyard.adapters.engine import DockerEngine
from dockyard.adapters.engine.errors import map_engine_errors
from dockyard.domain.models import Status
from dockyard.domain.ports import Change, ChangeKind, LogQuery, PathStat
from dockyard.errors import (
    EngineError,
    EngineUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
)

RECORDED = Path(__file__).parent / "recorded" / "engine"
NAME = "recengine1-app-1"  # what container_name("recengine1") gives
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


ERRORS = recorded("errors.json")
STATS = recorded("archive_path_stat.json")


def answer(body: Any, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return handler


class Dockerd:
    """Answers on a unix socket: ``routes`` maps "GET /path" to a handler."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.routes: dict[str, Handler] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        self.seen.append((key, dict(request.query)))
        handler = self.routes.get(key)
        if handler is None:
            return web.json_response({"message": f"page not found: {key}"}, status=404)
        return await handler(request)


@pytest.fixture
async def dockerd() -> AsyncIterator[Dockerd]:
    folder = Path(tempfile.mkdtemp(prefix="dky-", dir="/tmp"))  # unix socket paths are short
    server = Dockerd(folder / "docker.sock")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._dispatch)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, str(server.socket_path)).start()
    try:
        yield server
    finally:
        await runner.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def engine(dockerd: Dockerd) -> AsyncIterator[DockerEngine]:
    engine = DockerEngine(f"unix://{dockerd.socket_path}", timeout=5)
    try:
        yield engine
    finally:
        await engine.close()


# -- typed values from recorded answers -------------------------------------------


async def test_inspect_is_a_live_state(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes[f"GET /containers/{NAME}/json"] = answer(recorded("inspect.json"))
    state = await engine.inspect("recengine1")
    assert state is not None
    assert state.status is Status.RUNNING and state.exit_code == 0 and not state.oom_killed
    assert state.started_at == datetime(2026, 11, 28, 9, 27, 32, 553879, tzinfo=UTC)
    assert state.finished_at is None  # Go's zero time
    assert state.container_id is not None and state.container_id.startswith("a2b4699f")

    process = await engine.process("recengine1")
    assert process is not None and process.pid == 5528 and process.status is Status.RUNNING


async def test_a_missing_container_is_none(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes[f"GET /containers/{NAME}/json"] = answer(ERRORS["404 inspect"], 404)
    assert await engine.inspect("recengine1") is None
    assert await engine.process("recengine1") is None
    assert await engine.image_exists("busybox:nope") is False


async def test_list_managed(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes["GET /containers/json"] = answer(recorded("containers_list.json"))
    [found] = await engine.list_managed()
    assert found.cuid == "recengine1" and found.status is Status.RUNNING
    assert found.project_dir == "/srv/dockyard/recengine1"
    _, query = dockerd.seen[-1]
    assert query["all"] == "1"
    assert json.loads(query["filters"]) == {"label": ["dockyard.managed=true"]}


async def test_changes_are_typed(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes[f"GET /containers/{NAME}/changes"] = answer(recorded("changes.json"))
    changes = await engine.changes("recengine1")
    assert Change("/data/sub/a.txt", ChangeKind.ADDED) in changes
    assert Change("/etc", ChangeKind.CHANGED) in changes
    assert all(isinstance(c.kind, ChangeKind) for c in changes)

    dockerd.routes[f"GET /containers/{NAME}/changes"] = answer(None)  # nothing changed
    assert await engine.changes("recengine1") == []


async def test_changes_of_a_missing_container(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes[f"GET /containers/{NAME}/changes"] = answer(ERRORS["404 inspect"], 404)
    with pytest.raises(NotFoundError) as caught:
        await engine.changes("recengine1")
    assert caught.value.code == "CONTAINER_MISSING"


def stat_header(key: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(headers={"X-Docker-Container-Path-Stat": STATS[key]})

    return handler


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("dir /data/sub", PathStat("sub", 4096, 0o755, True, False, "", None)),
        ("file /data/sub/a.txt", PathStat("a.txt", 3, 0o644, False, False, "", None)),
        ("link /data/link", PathStat("link", 15, 0o777, False, True, "/data/sub/a.txt", None)),
    ],
)
async def test_archive_stat_is_a_path_stat(
    dockerd: Dockerd, engine: DockerEngine, key: str, expected: PathStat
) -> None:
    dockerd.routes[f"HEAD /containers/{NAME}/archive"] = stat_header(key)
    stat = await engine.archive_stat("recengine1", key.split()[1])
    assert stat is not None
    assert stat.mtime == datetime(2026, 11, 28, 9, 27, 32, 552811, tzinfo=UTC)
    assert stat == PathStat(**{**expected.__dict__, "mtime": stat.mtime})
    assert dockerd.seen[-1] == (f"HEAD /containers/{NAME}/archive", {"path": key.split()[1]})


async def test_archive_stat_of_nothing_is_none(dockerd: Dockerd, engine: DockerEngine) -> None:
    async def missing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)  # a HEAD's 404 has no body

    dockerd.routes[f"HEAD /containers/{NAME}/archive"] = missing
    assert await engine.archive_stat("recengine1", "/nope") is None


async def test_events_are_typed(dockerd: Dockerd, engine: DockerEngine) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write((RECORDED / "events.jsonl").read_bytes())
        return response  # the engine ends the stream (it restarts, say)

    dockerd.routes["GET /events"] = events
    seen = [e async for e in engine.stream_events()]
    assert [(e.cuid, e.action) for e in seen] == [("", "connected"), ("recengine1", "kill")]
    assert seen[1].attributes["signal"] == "15"
    assert seen[1].time == datetime.fromtimestamp(1795858058919030841 / 1e9, UTC)


# -- errors, mapped once ----------------------------------------------------------


@pytest.mark.parametrize(("key", "status"), [("409 remove running", 409), ("500 bad filters", 500)])
async def test_refusals_are_engine_errors(
    dockerd: Dockerd, engine: DockerEngine, key: str, status: int
) -> None:
    dockerd.routes["GET /version"] = answer(ERRORS[key], status)
    with pytest.raises(EngineError) as caught:
        await engine.version()
    error = caught.value
    assert not isinstance(error, EngineUnavailableError)
    assert error.kind == "engine_error" and error.code == "ENGINE_FAILED"
    assert error.details == {"engine_status": status}
    assert error.message == f"the engine refused GET version: {ERRORS[key]['message']}"
    assert error.__cause__ is not None


async def test_version(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes["GET /version"] = answer(recorded("version.json"))
    assert await engine.version() == "20.10.24+dfsg1"

    async def garbled(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"Version": "20.', content_type="application/json")

    dockerd.routes["GET /version"] = garbled
    with pytest.raises(EngineError) as caught:
        await engine.version()
    assert caught.value.message == "the engine's answer to GET version is malformed"


async def test_a_refused_connection_is_engine_unavailable() -> None:
    folder = Path(tempfile.mkdtemp(prefix="dky-", dir="/tmp"))
    path = folder / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # bound, never listening: connect() is refused
    engine = DockerEngine(f"unix://{path}", timeout=5)
    try:
        for call in (engine.version(), engine.inspect("recengine1"), engine.changes("x")):
            with pytest.raises(EngineUnavailableError) as caught:
                await call
            assert caught.value.code == "ENGINE_UNAVAILABLE"
            assert caught.value.message == "the Docker engine cannot be reached"
            assert isinstance(caught.value.__cause__, OSError)
        with pytest.raises(EngineUnavailableError):
            await engine.open_logs("recengine1", LogQuery())
    finally:
        await engine.close()
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


async def test_an_engine_that_does_not_answer_is_unavailable(dockerd: Dockerd) -> None:
    """A frozen engine is a 503 with Retry-After, like a dead one (issue 9 #4)."""
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.json_response(recorded("inspect.json"))

    dockerd.routes[f"GET /containers/{NAME}/json"] = hang
    engine = DockerEngine(f"unix://{dockerd.socket_path}", timeout=0.2)
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await engine.inspect("recengine1")
        assert caught.value.kind == "unavailable" and caught.value.code == "ENGINE_TIMEOUT"
        assert caught.value.retry_after
        assert caught.value.message == (
            f"the engine did not answer GET containers/{NAME}/json in time"
        )
    finally:
        released.set()  # the server's shutdown waits for its handlers
        await engine.close()


def broken_after(first: bytes) -> Handler:
    """Sends ``first`` of a longer body, then cuts the connection."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(first) + 1000)})
        await response.prepare(request)
        await response.write(first)
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


async def test_a_log_stream_that_breaks_is_our_error(
    dockerd: Dockerd, engine: DockerEngine
) -> None:
    dockerd.routes[f"GET /containers/{NAME}/logs"] = broken_after(b"hello\n")
    stream = await engine.open_logs("recengine1", LogQuery())
    got = bytearray()
    with pytest.raises(EngineUnavailableError) as caught:
        async for chunk in stream:
            got += chunk
    assert got == b"hello\n"
    assert caught.value.message == "the engine's log stream broke"


async def test_logs_of_a_missing_container(dockerd: Dockerd, engine: DockerEngine) -> None:
    dockerd.routes[f"GET /containers/{NAME}/logs"] = answer(ERRORS["404 inspect"], 404)
    with pytest.raises(NotFoundError) as caught:
        await engine.open_logs("recengine1", LogQuery())
    assert caught.value.code == "CONTAINER_MISSING"


async def test_archive_to(dockerd: Dockerd, engine: DockerEngine, tmp_path: Path) -> None:
    route = f"GET /containers/{NAME}/archive"
    dockerd.routes[route] = answer(ERRORS["404 archive"], 404)
    with pytest.raises(NotFoundError) as missing:
        await engine.archive_to("recengine1", "/nope", tmp_path / "a.tar", 1000)
    assert missing.value.code == "PATH_NOT_FOUND" and missing.value.details == {"path": "/nope"}

    async def tar(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 5000, content_type="application/x-tar")

    dockerd.routes[route] = tar
    await engine.archive_to("recengine1", "/data", tmp_path / "b.tar", 5000)
    assert (tmp_path / "b.tar").read_bytes() == b"x" * 5000
    with pytest.raises(PayloadTooLargeError) as large:
        await engine.archive_to("recengine1", "/data", tmp_path / "c.tar", 4999)
    assert large.value.code == "DOWNLOAD_TOO_LARGE"

    dockerd.routes[route] = broken_after(b"x" * 100)
    with pytest.raises(EngineUnavailableError) as broke:
        await engine.archive_to("recengine1", "/data", tmp_path / "d.tar", 5000)
    assert broke.value.message == "the engine's archive stream broke"


async def test_an_event_stream_that_breaks_is_our_error(
    dockerd: Dockerd, engine: DockerEngine
) -> None:
    dockerd.routes["GET /events"] = broken_after((RECORDED / "events.jsonl").read_bytes())
    seen: list[str] = []
    with pytest.raises(EngineUnavailableError) as caught:
        async for event in engine.stream_events():
            seen.append(event.action)
    assert seen == ["connected", "kill"]
    assert caught.value.message == "the engine's event stream broke"


# -- the one mapping, for what aiodocker raises itself (exec and attach) -----------


def test_aiodocker_errors_are_mapped_too() -> None:
    with pytest.raises(EngineUnavailableError) as unreachable:
        with map_engine_errors("the exec session"):
            raise aiodocker.DockerError(900, "Cannot connect to Docker Engine via unix://x")
    assert unreachable.value.message == "the Docker engine cannot be reached"
    assert isinstance(unreachable.value.__cause__, aiodocker.DockerError)

    with pytest.raises(NotFoundError) as gone:
        with map_engine_errors(
            "the exec session",
            not_found=lambda: NotFoundError("gone", code="CONTAINER_MISSING"),
        ):
            raise aiodocker.DockerError(404, "No such container: x")
    assert gone.value.code == "CONTAINER_MISSING"

    with pytest.raises(EngineError) as refused:
        with map_engine_errors("the exec session"):
            raise aiodocker.DockerError(409, "Container x is not running")
    assert (
        refused.value.message == "the engine refused the exec session: Container x is not running"
    )
    assert refused.value.details == {"engine_status": 409}

    with pytest.raises(EngineUnavailableError) as stalled:
        with map_engine_errors("the exec stream", stream="exec"):
            raise aiohttp.ServerTimeoutError("Timeout on reading data from socket")
    assert stalled.value.message == "the engine's exec stream broke"

    with pytest.raises(PayloadTooLargeError):  # our own errors pass through as they are
        with map_engine_errors("the archive stream", stream="archive"):
            raise PayloadTooLargeError("too large")
