"""``dockyard.client.quick``: the stdlib GET the command line's ``ps`` uses, against a real
(tiny) HTTP server on 127.0.0.1 - chunked and sized bodies, pages, the SDK's errors and
retries of 503. The real Dockyard server is in tests/e2e/test_cli.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dockyard.client import NotFound, RetryPolicy, TransportError, Unavailable, quick


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str]]] = []
    busy_left = 0

    def do_GET(self) -> None:
        Handler.seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/busy") and Handler.busy_left > 0:
            Handler.busy_left -= 1
            self._send(503, {"error": "unavailable", "code": "BUSY"}, {"Retry-After": "0"})
        elif self.path.startswith("/missing"):
            self._send(404, {"error": "not_found", "code": "NO_SUCH", "message": "gone"})
        elif self.path.startswith("/items"):
            second = "cursor=c2" in self.path
            page = {"items": [3] if second else [1, 2], "next_cursor": None if second else "c2"}
            self._send(200, page, chunked=not second)
        else:
            self._send(200, {"ok": True})

    def _send(
        self, status: int, body: Any, headers: dict[str, str] | None = None, chunked: bool = False
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(data) // 2
            for piece in (data[:half], data[half:], b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pages_are_followed_and_chunked_bodies_read(url: str) -> None:
    items = list(quick.get_pages(url, "/items", "items", params={"status": ["a", "b"]}))
    assert items == [1, 2, 3]
    assert Handler.seen[0][0] == "/items?status=a%2Cb"
    assert Handler.seen[1][0] == "/items?status=a%2Cb&cursor=c2"


def test_credentials_travel_as_headers(url: str) -> None:
    assert quick.get_json(url, "/", headers={"Authorization": "Bearer t"}) == {"ok": True}
    assert Handler.seen[0][1]["Authorization"] == "Bearer t"


def test_an_error_answer_is_the_sdks_error(url: str) -> None:
    with pytest.raises(NotFound) as err:
        quick.get_json(url, "/missing")
    assert (err.value.code, err.value.message, err.value.status) == ("NO_SUCH", "gone", 404)


def test_503_is_retried_then_gives_up_with_the_last_error(url: str) -> None:
    Handler.busy_left = 1
    assert quick.get_json(url, "/busy") == {"ok": True}
    Handler.busy_left = 5
    with pytest.raises(Unavailable):
        quick.get_json(url, "/busy", retry=RetryPolicy(attempts=2))


def test_no_server_is_a_transport_error(url: str) -> None:
    closed = url.rsplit(":", 1)[0] + ":1"
    with pytest.raises(TransportError):
        quick.get_json(closed, "/", retry=RetryPolicy(attempts=1))


def test_only_plain_http_without_a_proxy_takes_this_way() -> None:
    assert quick.usable("http://h:1", {})
    assert not quick.usable("https://h:1", {})
    assert not quick.usable("http://h:1", {"HTTP_PROXY": "http://proxy:3128"})
