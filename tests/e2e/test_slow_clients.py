"""Slow clients are cut off with 408 (issue 9 #11, SPEC §9): a head trickling in
(slowloris), a body shorter than its Content-Length, a chunked body that never ends. The
server answers others all the while. The deadlines are set short for the test."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.conftest import ADMIN, basic
from tests.server import ServeFactory, Server


@pytest.fixture
def server(serve: ServeFactory) -> Server:
    """The real server with read deadlines of one second."""
    return serve(header_timeout=1, body_idle_timeout=1)


def _connect(srv: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server says until it closes the connection (30 s at most)."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _assert_408(raw: bytes, waiting_for: str) -> None:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), raw[:200]
    error = json.loads(body)
    assert error["error"] == "timeout" and error["status"] == 408
    assert error["details"]["waiting_for"] == waiting_for
    assert {"code", "message", "request_id", "timestamp"} <= set(error)


def test_a_head_that_trickles_in_is_cut_off(server: Server) -> None:
    sockets = [_connect(server) for _ in range(40)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
        # The server serves others while those wait.
        assert httpx.get(f"{server.url}/livez", timeout=10).status_code == 200
        for sock in sockets:
            _assert_408(_read_all(sock), "headers")
    finally:
        for sock in sockets:
            sock.close()


def test_a_connection_that_says_nothing_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        _assert_408(_read_all(sock), "headers")


@pytest.mark.parametrize(
    "head",
    [
        b"POST /containers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n",
        b"POST /containers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n",
    ],
    ids=["short-body", "unterminated-chunked"],
)
def test_a_body_that_stops_coming_is_cut_off(server: Server, head: bytes) -> None:
    auth = basic(*ADMIN)["Authorization"].encode()
    body = b'{"image": "x"' if b"Content-Length" in head else b'5\r\n{"ima\r\n'
    with _connect(server) as sock:
        sock.sendall(head + b"Authorization: " + auth + b"\r\n\r\n" + body)
        _assert_408(_read_all(sock), "body")
    # Nothing was made.
    listed = httpx.get(f"{server.url}/containers", headers=basic(*ADMIN), timeout=10)
    assert listed.json()["containers"] == []


def test_an_idle_keep_alive_connection_outlives_a_clients_pool_expiry(server: Server) -> None:
    """A connection left idle for longer than httpx keeps its idle connections (5 s) is
    still open, so a client never sends a request on a connection the server is closing
    at that very moment (the 5 s of uvicorn's default raced httpx's 5 s). The idle time is
    the behaviour under test, not a synchronisation."""
    import time

    request = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"

    def answer(sock: socket.socket) -> bytes:
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += sock.recv(65536) or b"<closed>\r\n\r\n"
        head, _, body = raw.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += sock.recv(65536)
        return head

    with _connect(server) as sock:
        sock.sendall(request)
        assert answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # idle past httpx's pool expiry and the 1 s header deadline
        sock.sendall(request)
        again = answer(sock)
        assert again.startswith(b"HTTP/1.1 200"), again[:200]
