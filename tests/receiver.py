"""A webhook receiver for the tests: an asyncio HTTP/1.1 server on 127.0.0.1 in a thread
of its own, that verifies each signature and misbehaves on purpose (``Chaos``)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.domain.automation.hooks import verify


@dataclass
class Chaos:
    """Per request: answer 500 (``fail``), close without answering (``drop``), or sleep
    ``sleep_for`` seconds first (``slow``); fractions of requests."""

    fail: float = 0.0
    drop: float = 0.0
    slow: float = 0.0
    sleep_for: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool
    answered: int | None  # the status sent; None: the connection was closed

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    def __init__(self, chaos: Chaos | None = None, seed: int = 11) -> None:
        self.chaos = chaos or Chaos()
        self.secrets: dict[str, bytes] = {}  # path -> the webhook's secret
        self.received: list[Received] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str = "/hook") -> dict[str, Received]:
        """The requests answered 2xx, by delivery id."""
        with self._lock:
            return {
                r.headers["x-dockyard-delivery"]: r
                for r in self.received
                if r.path == path and r.answered is not None and 200 <= r.answered < 300
            }

    def all(self, path: str = "/hook") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the receiver did not see what was expected in time")
            time.sleep(0.02)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            secret = self.secrets.get(path, b"")
            valid = verify(secret, headers.get("x-dockyard-signature", ""), body)
            answered = await self._answer(writer)
            with self._lock:
                self.received.append(Received(path, headers, body, valid, answered))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> int | None:
        chaos, draw = self.chaos, self._random.random()
        if draw < chaos.drop:
            return None
        if draw < chaos.drop + chaos.slow:
            await asyncio.sleep(chaos.sleep_for)
        status = 500 if draw > 1 - chaos.fail else chaos.status
        extra = "".join(f"{k}: {v}\r\n" for k, v in chaos.headers.items())
        head = f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}Connection: close\r\n"
        writer.write(f"{head}\r\nok".encode())
        await writer.drain()
        return status
