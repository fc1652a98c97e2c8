"""Container logs through the Engine API: the request is opened first (so that a missing
container is an error before any byte of the answer), then its body is streamed.

A TTY container's log stream is raw bytes; any other's is multiplexed: frames of an
8-byte header (stream 0/1/2, three zero bytes, a big-endian length) and a payload.
Engine API 1.42+ says which in ``Content-Type``; older engines (20.10 here) do not, and
the Docker CLI asks ``inspect`` for ``Config.Tty`` instead. One inspect per request would
cost a round trip, so the first bytes decide: a frame header starts with 0, 1 or 2 and
three zero bytes, which no terminal output does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from dockyard.adapters.engine.transport import EngineTransport, stream_of
from dockyard.domain.ports import LogQuery
from dockyard.errors import NotFoundError

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
_HEADER = 8


class Demuxer:
    """The payloads of a multiplexed stream, whatever the chunk boundaries."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= _HEADER:
            size = int.from_bytes(buf[pos + 4 : pos + 8], "big")
            end = pos + _HEADER + size
            if end > len(buf):
                break
            out.append(bytes(buf[pos + _HEADER : end]))
            pos = end
        del buf[:pos]
        return b"".join(out)

    @property
    def pending(self) -> int:
        return len(self._buf)


class LogDecoder:
    """Raw or multiplexed: told by the content type, or found from the first bytes."""

    def __init__(self, content_type: str | None = None) -> None:
        self._mode: str | None = None
        if content_type == RAW_STREAM:
            self._mode = "raw"
        elif content_type == MULTIPLEXED_STREAM:
            self._mode = "mux"
        self._head = b""
        self._demux = Demuxer()

    @property
    def mode(self) -> str | None:
        return self._mode

    def feed(self, data: bytes) -> bytes:
        if self._mode is None:
            head = self._head + data
            if not head:
                return b""
            if head[0] > 2:
                self._mode = "raw"
            elif len(head) >= 4:
                self._mode = "mux" if head[1:4] == b"\0\0\0" else "raw"
            else:
                self._head = head
                return b""
            self._head = b""
            data = head
        if self._mode == "raw":
            return data
        return self._demux.feed(data)

    def finish(self) -> bytes:
        """What is left at the end of the stream (an undecided short head is raw)."""
        head, self._head = self._head, b""
        return head


def log_params(query: LogQuery) -> dict[str, str]:
    params = {
        "stdout": "1" if query.stdout else "0",
        "stderr": "1" if query.stderr else "0",
        "follow": "1" if query.follow else "0",
        "timestamps": "1" if query.timestamps else "0",
        "tail": "all" if query.tail is None else str(query.tail),
    }
    if query.since is not None:
        params["since"] = f"{query.since:.9f}"
    if query.until is not None:
        params["until"] = f"{query.until:.9f}"
    return params


class EngineLogStream:
    """An open log response; iterate it once, ``aclose`` it when stopping early."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._decoder = LogDecoder(response.headers.get("Content-Type"))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        decoder = self._decoder
        try:
            async for data in stream_of(self._response, "log"):
                out = decoder.feed(data)
                if out:
                    yield out
            tail = decoder.finish()
            if tail:
                yield tail
        finally:
            self._response.close()

    async def aclose(self) -> None:
        self._response.close()


async def open_logs(http: EngineTransport, name: str, query: LogQuery) -> EngineLogStream:
    """Open ``GET /containers/{name}/logs``; the answer's head must come within the deadline.

    A follow stream has no read deadline (a quiet container is not an error); a plain read
    has one per chunk, not in total (a large log may take a while)."""
    response = await http.open(
        f"containers/{name}/logs",
        what="the logs request",
        params=log_params(query),
        read_timeout=None if query.follow else http.timeout,
        not_found=_container_missing,
    )
    return EngineLogStream(response)


def _container_missing() -> NotFoundError:
    return NotFoundError("the container is gone from the engine", code="CONTAINER_MISSING")
