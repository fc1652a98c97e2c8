"""The WebSocket terminal against the real server and real containers (SPEC §5)."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import socket
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from dockyard.domain.containers.compose_doc import container_name
from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX, docker, wait_for
from tests.server import ServeFactory, Server

HEADERS = basic(*ADMIN)


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One server for the module: each test makes its own containers (the shutdown test
    has its own server)."""
    return module_server


def create(server: Server, **body: Any) -> str:
    resp = httpx.post(
        f"{server.url}/containers",
        headers=HEADERS,
        timeout=60,
        json={"image": BUSYBOX, "start": True, **body},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


def ws_url(server: Server, cuid: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/ws/{cuid}{'?' + query if query else ''}"


async def collect(ws: ClientConnection, timeout: float = 30) -> tuple[list[dict[str, Any]], int]:
    """Every frame until the server closes; returns them and the close code."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        try:
            async for message in ws:
                frames.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass
    assert ws.close_code is not None
    return frames, ws.close_code


def text_of(frames: list[dict[str, Any]], kind: str = "stdout") -> str:
    out = b""
    for f in frames:
        if f["type"] == kind:
            out += base64.b64decode(f["data"]) if f["encoding"] == "base64" else f["data"].encode()
    return out.decode(errors="replace")


def finals(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] in ("exit", "error")]


async def test_seed_terminal_attach_ls_and_exit(server: Server) -> None:
    """Seed 001's ContainerTerminal / ContainerExecutor: stdin to the main `sh`."""
    cuid = create(server)
    async with websockets.connect(
        ws_url(server, cuid, "cols=80&rows=24"), additional_headers=HEADERS
    ) as ws:
        await ws.send(json.dumps({"type": "stdin", "data": "ls -la /app\n", "encoding": "utf8"}))
        await ws.send(json.dumps({"type": "stdin", "data": "exit\n", "encoding": "utf8"}))
        frames, close = await collect(ws)
    assert finals(frames) == [{"type": "exit", "code": 0}] and frames[-1]["type"] == "exit"
    assert close == 1000
    out = text_of(frames)
    assert "BusyBox" in out  # printed before we attached: replayed
    assert "total" in out and " .." in out


async def test_exec_keeps_streams_apart_and_reports_exit_code(server: Server) -> None:
    cuid = create(server, command="sleep 600")
    query = urlencode({"tty": "false", "cmd": "sh -c 'echo out; echo err >&2; exit 7'"})
    async with websockets.connect(ws_url(server, cuid, query), additional_headers=HEADERS) as ws:
        frames, close = await collect(ws)
    assert text_of(frames, "stdout") == "out\n" and text_of(frames, "stderr") == "err\n"
    assert finals(frames) == [{"type": "exit", "code": 7}] and close == 1000


async def test_utf8_is_never_split_and_binary_goes_base64(server: Server) -> None:
    cuid = create(server, command="sleep 600")
    # 300 KB of two- and three-byte characters: reads and frames cut it anywhere.
    script = "i=0; while [ $i -lt 20000 ]; do printf 'é€aé€'; i=$((i+1)); done; printf '\\377\\376'"
    query = urlencode({"tty": "false", "cmd": f"sh -c {shlex.quote(script)}"})
    async with websockets.connect(
        ws_url(server, cuid, query), additional_headers=HEADERS, max_size=None
    ) as ws:
        frames, _ = await collect(ws, timeout=60)
    out = [f for f in frames if f["type"] == "stdout"]
    utf8 = "".join(f["data"] for f in out if f["encoding"] == "utf8")
    assert utf8 == "é€aé€" * 20000
    binary = [base64.b64decode(f["data"]) for f in out if f["encoding"] == "base64"]
    assert b"".join(binary) == b"\xff\xfe"
    assert finals(frames) == [{"type": "exit", "code": 0}]


async def test_resize_signal_and_client_close(server: Server) -> None:
    cuid = create(server, command="sleep 600")
    async with websockets.connect(
        ws_url(server, cuid, "cmd=sh&cols=100&rows=30"), additional_headers=HEADERS
    ) as ws:
        await ws.send(json.dumps({"type": "stdin", "data": "stty size\n"}))
        seen = ""
        while "30 100" not in seen:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen += frame.get("data", "")
        await ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        await ws.send(json.dumps({"type": "stdin", "data": "stty size\n"}))
        while "40 120" not in seen:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen += frame.get("data", "")
        await ws.send(json.dumps({"type": "stdin", "data": "sleep 300\n"}))
        await ws.send(json.dumps({"type": "signal", "name": "KILL"}))
        frames, close = await collect(ws)
    assert finals(frames) == [{"type": "exit", "code": 137}] and close == 1000
    # close from the client kills the exec process
    async with websockets.connect(
        ws_url(server, cuid, "cmd=sleep%20777"), additional_headers=HEADERS
    ) as ws:
        wait_for(
            lambda: "sleep 777" in docker("exec", container_name(cuid), "ps"), what="exec process"
        )
        await ws.send(json.dumps({"type": "close"}))
        frames, close = await collect(ws)
    assert len(finals(frames)) == 1 and finals(frames)[0]["type"] == "exit" and close == 1000
    wait_for(
        lambda: "sleep 777" not in docker("exec", container_name(cuid), "ps"),
        what="exec process gone",
    )


async def test_container_stopped_or_removed_underneath(server: Server) -> None:
    cuid = create(server)
    async with websockets.connect(ws_url(server, cuid), additional_headers=HEADERS) as ws:
        await ws.recv()
        docker("kill", container_name(cuid))
        frames, close = await collect(ws)
    assert finals(frames) == [{"type": "exit", "code": 137}] and close == 1000

    other = create(server, command="sleep 600")
    async with websockets.connect(
        ws_url(server, other, "cmd=sleep%20600"), additional_headers=HEADERS
    ) as ws:
        httpx.delete(f"{server.url}/containers/{other}", headers=HEADERS, timeout=60)
        frames, close = await collect(ws)
    assert len(finals(frames)) == 1 and close in (1000, 1011)


async def test_refusals(server: Server) -> None:
    cuid = create(server, start=False)
    async with websockets.connect(ws_url(server, cuid), additional_headers=HEADERS) as ws:
        frames, close = await collect(ws)
    assert [f["error"]["error"] for f in frames] == ["state_error"] and close == 1008
    missing = "c00000000-0000-4000-8000-000000000000"
    async with websockets.connect(ws_url(server, missing), additional_headers=HEADERS) as ws:
        frames, close = await collect(ws)
    assert [f["error"]["error"] for f in frames] == ["not_found"] and close == 1008
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(
            ws_url(server, cuid), additional_headers=basic("admin", "wrong")
        ):
            pass
    assert err.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(ws_url(server, cuid)):
            pass
    assert err.value.response.status_code == 401


async def test_several_clients_share_the_main_process(server: Server) -> None:
    cuid = create(server)
    async with (
        websockets.connect(ws_url(server, cuid), additional_headers=HEADERS) as a,
        websockets.connect(ws_url(server, cuid), additional_headers=HEADERS) as b,
    ):
        await a.send(json.dumps({"type": "stdin", "data": "echo shared-$((6*7))\n"}))
        for ws in (a, b):
            seen = ""
            while "shared-42" not in seen:
                seen += json.loads(await asyncio.wait_for(ws.recv(), 10)).get("data", "")
        await b.send(json.dumps({"type": "close"}))
        frames, close = await collect(b)
        assert finals(frames) == [{"type": "exit", "code": None, "detached": True}]
        assert close == 1000
        await a.send(json.dumps({"type": "stdin", "data": "echo still-here\n"}))
        seen = ""
        while "still-here" not in seen:
            seen += json.loads(await asyncio.wait_for(a.recv(), 10)).get("data", "")


async def test_vanished_client_has_its_exec_killed(server: Server) -> None:
    cuid = create(server, command="sleep 600")
    # A raw socket that upgrades, then disappears without a close frame.
    sock = socket.create_connection(("127.0.0.1", server.port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    sock.sendall(
        (
            f"GET /ws/{cuid}?cmd=sleep%20888 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: {HEADERS['Authorization']}\r\n\r\n"
        ).encode()
    )
    assert b"101" in sock.recv(1024)
    wait_for(lambda: "sleep 888" in docker("exec", container_name(cuid), "ps"), what="exec started")
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    wait_for(
        lambda: "sleep 888" not in docker("exec", container_name(cuid), "ps"),
        timeout=20,
        what="exec killed after the client vanished",
    )


async def test_shutdown_ends_sessions_with_an_error_frame(serve: ServeFactory) -> None:
    server = serve()
    cuid = create(server, command="sleep 600")
    async with websockets.connect(ws_url(server, cuid, "cmd=sh"), additional_headers=HEADERS) as ws:
        await ws.send(json.dumps({"type": "stdin", "data": "echo ready\n"}))
        seen = ""
        while "ready" not in seen:
            seen += json.loads(await asyncio.wait_for(ws.recv(), 10)).get("data", "")
        server.stop()
        frames, close = await collect(ws)
    assert [f["error"]["code"] for f in finals(frames)] == ["shutting_down"] and close == 1001


async def test_an_exec_tty_has_its_size_from_the_first_byte(server: Server) -> None:
    """Issue 9 #7: an immediate `stty size` used to see 0 0 (the resize came after the
    process started); and a short tty=false exec always reports its real exit code."""
    cuid = create(server, command="sleep 600")
    for _ in range(10):
        query = urlencode({"cmd": "stty size", "cols": 132, "rows": 43})
        async with websockets.connect(
            ws_url(server, cuid, query), additional_headers=HEADERS
        ) as ws:
            frames, _ = await collect(ws)
        assert text_of(frames).strip() == "43 132"
        assert finals(frames) == [{"type": "exit", "code": 0}]
    for _ in range(20):
        query = urlencode({"tty": "false", "cmd": "sh -c 'exit 3'"})
        async with websockets.connect(
            ws_url(server, cuid, query), additional_headers=HEADERS
        ) as ws:
            frames, _ = await collect(ws)
        assert finals(frames) == [{"type": "exit", "code": 3}]
