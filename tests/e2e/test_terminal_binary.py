"""The terminal's binary mode (SPEC §5, subprotocol ``dockyard.v1.binary``) against the
real server, with a plain WebSocket client: what any client, not only the SDK, sees."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from tests.conftest import ADMIN, basic
from tests.docker_helpers import BUSYBOX
from tests.server import Server

HEADERS = basic(*ADMIN)
BINARY = [Subprotocol("dockyard.v1.binary")]


@pytest.fixture(scope="module")
def server(module_server: Server) -> Server:
    """One server for the module: each test makes its own container."""
    return module_server


def create(server: Server, **body: Any) -> str:
    resp = httpx.post(
        f"{server.url}/containers",
        headers=HEADERS,
        timeout=60,
        json={"image": BUSYBOX, "start": True, "command": "sleep 600", **body},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["cuid"])


def ws_url(server: Server, cuid: str, **query: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/{cuid}?{urlencode(query)}"


async def drain(ws: ClientConnection) -> tuple[dict[int, bytes], list[dict[str, Any]], int]:
    """Until the server closes: output bytes by channel, the JSON frames, the close code."""
    out: dict[int, bytes] = {1: b"", 2: b""}
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    out[message[0]] += message[1:]
                else:
                    frames.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass
    assert ws.close_code is not None
    return out, frames, ws.close_code


async def test_output_is_binary_frames_by_channel_and_control_stays_json(server: Server) -> None:
    cuid = create(server)
    url = ws_url(server, cuid, tty="false", cmd="sh -c 'echo out; printf \"\\377\" >&2; exit 3'")
    async with websockets.connect(url, additional_headers=HEADERS, subprotocols=BINARY) as ws:
        assert ws.subprotocol == "dockyard.v1.binary"
        out, frames, close = await drain(ws)
    assert out == {1: b"out\n", 2: b"\xff"}  # raw bytes: no base64, no UTF-8 rule
    assert frames == [{"type": "exit", "code": 3}] and close == 1000


async def test_a_mebibyte_of_random_bytes_round_trips_exactly(server: Server) -> None:
    cuid = create(server)
    payload = os.urandom(1024 * 1024)
    url = ws_url(server, cuid, tty="false", cmd=f"head -c {len(payload)}")
    async with websockets.connect(
        url, additional_headers=HEADERS, subprotocols=BINARY, max_size=None
    ) as ws:

        async def feed() -> None:
            for start in range(0, len(payload), 100_000):  # frames of uneven sizes
                await ws.send(b"\x00" + payload[start : start + 100_000])

        sender = asyncio.create_task(feed())
        out, frames, close = await drain(ws)
        await sender
    assert out[1] == payload and out[2] == b""
    assert frames == [{"type": "exit", "code": 0}] and close == 1000


async def test_stdin_as_json_still_works_in_binary_mode(server: Server) -> None:
    cuid = create(server)
    url = ws_url(server, cuid, tty="false", cmd="head -c 6")
    async with websockets.connect(url, additional_headers=HEADERS, subprotocols=BINARY) as ws:
        await ws.send(json.dumps({"type": "stdin", "data": "héllo"}))
        out, frames, _ = await drain(ws)
    assert out[1] == "héllo".encode() and frames == [{"type": "exit", "code": 0}]


async def test_without_the_subprotocol_nothing_changes(server: Server) -> None:
    cuid = create(server)
    url = ws_url(server, cuid, tty="false", cmd="echo hi")
    async with websockets.connect(url, additional_headers=HEADERS) as ws:
        assert ws.subprotocol is None
        out, frames, close = await drain(ws)
    assert out == {1: b"", 2: b""}  # no binary frame at all
    assert frames == [
        {"type": "stdout", "data": "hi\n", "encoding": "utf8"},
        {"type": "exit", "code": 0},
    ]
    # ... and a binary frame there is outside the protocol
    async with websockets.connect(
        ws_url(server, cuid, cmd="sleep 30"), additional_headers=HEADERS
    ) as ws:
        await ws.send(b"\x00data")
        _, frames, close = await drain(ws)
    assert [f["error"]["code"] for f in frames] == ["INVALID_FRAME"] and close == 1007


async def test_a_binary_frame_on_an_output_channel_is_refused(server: Server) -> None:
    cuid = create(server)
    url = ws_url(server, cuid, cmd="sleep 30")
    async with websockets.connect(url, additional_headers=HEADERS, subprotocols=BINARY) as ws:
        await ws.send(b"\x01not stdin")
        _, frames, close = await drain(ws)
    assert [f["error"]["code"] for f in frames] == ["INVALID_FRAME"] and close == 1007


async def test_a_refusal_is_a_json_error_frame_in_binary_mode_too(server: Server) -> None:
    cuid = create(server, start=False)
    url = ws_url(server, cuid)
    async with websockets.connect(url, additional_headers=HEADERS, subprotocols=BINARY) as ws:
        assert ws.subprotocol == "dockyard.v1.binary"
        _, frames, close = await drain(ws)
    assert [f["error"]["error"] for f in frames] == ["state_error"] and close == 1008
