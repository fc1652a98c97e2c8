"""The terminal of SPEC §5: exec sessions, attaching to the main process, and the
framing of output into JSON frames that never split a UTF-8 character.

Attaching goes through one ``AttachHub`` per container: one engine stream, a ring of
the last output (replayed to each new client, so one that connects just after start
still sees the beginning), and bounded queues per client (back-pressure, not memory).
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from dockyard.errors import RateLimitedError

log = structlog.get_logger("dockyard.terminal")

SIGNALS = ("INT", "TERM", "KILL", "HUP", "QUIT", "USR1", "USR2")
REPLAY_BYTES = 1024 * 1024
QUEUE_CHUNKS = 64
FRAME_BYTES = 64 * 1024


@dataclass(frozen=True)
class Output:
    stream: str  # stdout | stderr
    data: bytes


class TerminalStream(Protocol):
    async def read(self) -> Output | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, cols: int, rows: int) -> None: ...
    async def signal(self, name: str) -> None: ...
    async def terminate(self) -> None: ...
    async def exit_code(self) -> int | None: ...
    async def close(self) -> None: ...


class Utf8Framer:
    """Turns byte chunks into frames: ``utf8`` when valid, ``base64`` otherwise.

    A multi-byte character cut between two reads is held back until its rest arrives."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._tail = b""

    def feed(self, data: bytes) -> list[dict[str, str]]:
        data = self._tail + data
        self._tail = b""
        cut = _incomplete_tail(data)
        if cut:
            data, self._tail = data[:-cut], data[-cut:]
        return self._frames(data)

    def flush(self) -> list[dict[str, str]]:
        data, self._tail = self._tail, b""
        return self._frames(data)

    def _frames(self, data: bytes) -> list[dict[str, str]]:
        frames = []
        start = 0
        while start < len(data):
            piece = data[start : start + FRAME_BYTES]
            if start + len(piece) < len(data):
                # Keep characters whole across our own frame boundaries too.
                piece = piece[: len(piece) - _incomplete_tail(piece)] or piece
            frames += encode_all(self.stream, piece)
            start += len(piece)
        return frames


def _incomplete_tail(data: bytes) -> int:
    """How many trailing bytes form the start of a character that is not complete yet."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: look further back
            continue
        if byte & 0x80 == 0:  # ASCII: complete
            return 0
        need = (
            2
            if byte & 0xE0 == 0xC0
            else 3
            if byte & 0xF0 == 0xE0
            else 4
            if (byte & 0xF8 == 0xF0)
            else 1
        )
        return back if back < need else 0
    return 0


def encode_all(stream: str, data: bytes) -> list[dict[str, str]]:
    """Text before the first invalid byte stays readable; the rest goes as base64."""
    try:
        return [{"type": stream, "data": data.decode("utf-8"), "encoding": "utf8"}]
    except UnicodeDecodeError as exc:
        head = [encode(stream, data[: exc.start])] if exc.start else []
        return [
            *head,
            {
                "type": stream,
                "data": base64.b64encode(data[exc.start :]).decode(),
                "encoding": "base64",
            },
        ]


def encode(stream: str, data: bytes) -> dict[str, str]:
    try:
        return {"type": stream, "data": data.decode("utf-8"), "encoding": "utf8"}
    except UnicodeDecodeError:
        return {"type": stream, "data": base64.b64encode(data).decode(), "encoding": "base64"}


@dataclass
class Subscriber:
    queue: asyncio.Queue[Output | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_CHUNKS)
    )


class AttachHub:
    """One engine attach stream for a container, shared by every attached client."""

    def __init__(
        self,
        cuid: str,
        opener: Callable[[], Awaitable[TerminalStream]],
        replay: Callable[[], Awaitable[bytes]],
        on_empty: Callable[[str], None],
    ) -> None:
        self.cuid = cuid
        self._opener = opener
        self._replay = replay
        self._on_empty = on_empty
        self._stream: TerminalStream | None = None
        self._ring: deque[bytes] = deque()
        self._ring_bytes = 0
        self._subscribers: list[Subscriber] = []
        self._pump: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.ended = False

    @property
    def stream(self) -> TerminalStream:
        assert self._stream is not None
        return self._stream

    async def join(self) -> Subscriber:
        async with self._lock:
            if self._stream is None:
                self._stream = await self._opener()
                self._remember(await self._replay())
                self._pump = asyncio.create_task(self._run(), name=f"attach-{self.cuid}")
            sub = Subscriber()
            for chunk in self._ring:  # the ring holds fewer chunks than a queue takes
                sub.queue.put_nowait(Output("stdout", chunk))
            if self.ended:
                sub.queue.put_nowait(None)
            self._subscribers.append(sub)
            return sub

    def _remember(self, data: bytes) -> None:
        if not data:
            return
        # Ring chunks are at most FRAME_BYTES so the replay fits in a queue.
        for start in range(0, len(data), FRAME_BYTES):
            piece = data[start : start + FRAME_BYTES]
            self._ring.append(piece)
            self._ring_bytes += len(piece)
        while self._ring_bytes > REPLAY_BYTES or len(self._ring) > QUEUE_CHUNKS - 2:
            self._ring_bytes -= len(self._ring.popleft())

    async def _run(self) -> None:
        try:
            while True:
                out = await self.stream.read()
                if out is None:
                    break
                self._remember(out.data)
                for sub in list(self._subscribers):
                    try:
                        # Back-pressure: wait for slow clients, but not forever.
                        await asyncio.wait_for(sub.queue.put(out), timeout=30)
                    except TimeoutError:
                        self._subscribers.remove(sub)
                        with suppress(asyncio.QueueFull):
                            sub.queue.put_nowait(None)
        except Exception as exc:  # the engine stream broke; end every session
            log.warning("terminal.attach.broken", cuid=self.cuid, error=type(exc).__name__)
        finally:
            self.ended = True
            for sub in self._subscribers:
                with suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)

    async def leave(self, sub: Subscriber) -> None:
        async with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
            if not self._subscribers:
                await self._close()

    async def _close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with suppress(asyncio.CancelledError):
                await self._pump
        if self._stream is not None:
            await self._stream.close()
        self._stream = None
        self._on_empty(self.cuid)


@dataclass(eq=False)
class Session:
    """One WebSocket client's session; ``close`` ends it from outside (revocation,
    shutdown, container removal)."""

    username: str
    cuid: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: tuple[str, str, int] | None = None  # (code, message, ws close code)

    def end(self, code: str, message: str, close_code: int) -> None:
        if self.reason is None:
            self.reason = (code, message, close_code)
        self.ended.set()


class SessionRegistry:
    """Counts and reaches open sessions: limits per user and container, revocation,
    shutdown."""

    def __init__(self, per_user: int, per_container: int) -> None:
        self.per_user = per_user
        self.per_container = per_container
        self._sessions: set[Session] = set()
        self._by_user: defaultdict[str, int] = defaultdict(int)
        self._by_container: defaultdict[str, int] = defaultdict(int)

    def open(self, username: str, cuid: str) -> Session:
        if self._by_user[username] >= self.per_user:
            raise RateLimitedError(
                f"at most {self.per_user} terminal sessions per user",
                retry_after=5,
                code="TOO_MANY_SESSIONS",
            )
        if self._by_container[cuid] >= self.per_container:
            raise RateLimitedError(
                f"at most {self.per_container} terminal sessions per container",
                retry_after=5,
                code="TOO_MANY_SESSIONS",
            )
        session = Session(username, cuid)
        self._sessions.add(session)
        self._by_user[username] += 1
        self._by_container[cuid] += 1
        return session

    def close(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.discard(session)
            self._by_user[session.username] -= 1
            self._by_container[session.cuid] -= 1

    def end_user(self, username: str, code: str, message: str) -> int:
        found = [s for s in self._sessions if s.username == username]
        for session in found:
            session.end(code, message, 1008)
        return len(found)

    def end_container(self, cuid: str, code: str, message: str) -> None:
        for session in [s for s in self._sessions if s.cuid == cuid]:
            session.end(code, message, 1011)

    def end_all(self, code: str, message: str) -> None:
        for session in list(self._sessions):
            session.end(code, message, 1001)

    def __len__(self) -> int:
        return len(self._sessions)
