"""The HTTP server: uvicorn, with read deadlines it does not have on its own.

uvicorn closes idle keep-alive connections but never times out a request being read: a
client that sends its headers a byte a second (slowloris), a body shorter than its
Content-Length or a chunked body that never ends holds a connection for ever (issue 9).
``DeadlineProtocol`` gives each request ``header_timeout`` seconds for its head and lets
its body go quiet for at most ``body_idle_timeout`` seconds (time the application itself
is not reading does not count); past either it answers 408 in SPEC §9's shape, when no
answer was started, and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dockyard.api.errors import problem

log = structlog.get_logger("dockyard.server")


def timeout_response(what: str) -> bytes:
    """A whole HTTP/1.1 408 answer, SPEC §9's body rendered by ``api/errors.problem``."""
    request_id = str(uuid.uuid4())
    body = json.dumps(
        problem(
            "timeout",
            "REQUEST_TIMEOUT",
            f"the request's {what} did not arrive in time",
            request_id=request_id,
            status=408,
            details={"waiting_for": what},
        )
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on the request head and an idle
    limit on the request body (set by ``deadline_protocol``)."""

    header_timeout = 10.0
    body_idle_timeout = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None
        super().connection_made(transport)
        self._arm("headers", self.header_timeout)  # a connection that never says a word

    def data_received(self, data: bytes) -> None:
        if self._waiting_for == "body":
            self._arm("body", self.body_idle_timeout)  # it is still coming
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._waiting_for != "headers":
            self._arm("headers", self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm("body", self.body_idle_timeout)  # on_message_complete disarms at once

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._waiting_for = None

    def _expired(self) -> None:
        what = self._waiting_for or "headers"
        self._timer = None
        if self.transport.is_closing():
            return
        if what == "body" and self.flow.read_paused:
            self._arm("body", self.body_idle_timeout)  # the application is not reading
            return
        cycle: Any = self.cycle if what == "body" else None
        if cycle is None or not cycle.response_started:
            self.transport.write(timeout_response(what))
        if cycle is not None:
            cycle.disconnected = True  # the application's receive() ends
            cycle.message_event.set()
        log.warning("request.timeout", waiting_for=what, client=_client(self.client))
        self.transport.close()


def _client(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None


def deadline_protocol(header_timeout: float, body_idle_timeout: float) -> type[DeadlineProtocol]:
    return type(
        "ConfiguredDeadlineProtocol",
        (DeadlineProtocol,),
        {"header_timeout": header_timeout, "body_idle_timeout": body_idle_timeout},
    )
