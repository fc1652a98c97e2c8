"""``client.terminal(cuid, cmd=…)``: the WebSocket terminal of SPEC §5 in binary mode.

    async with client.terminal(cuid, cmd="sh", tty=True) as term:
        await term.send("ls /app\\nexit\\n")
        async for channel, data in term:
            sys.stdout.buffer.write(data)
    print(term.exit_code)

Output arrives as ``(channel, bytes)``: ``STDOUT`` (1) or ``STDERR`` (2, only with
``tty=False``). The iteration ends with the session: ``exit_code`` is then the process's
code (None when the client detached from a container's main process). ``close_stdin()``
is the end of input: an exec process reads EOF. An ``error`` frame raises the matching
exception of ``errors.py`` with the server's body. A server that does not speak the
binary subprotocol is read in its JSON frames instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from dockyard.client.errors import DockyardError, TransportError, error_for
from dockyard.domain.terminal import wire

STDOUT = wire.STDOUT
STDERR = wire.STDERR
MAX_MESSAGE = 4 * 1024 * 1024
STDIN_CHUNK = 512 * 1024  # below the server's 1 MiB stdin frame limit


class Output(NamedTuple):
    channel: int  # STDOUT or STDERR
    data: bytes


class Terminal:
    """One terminal session (an exec with ``cmd``, else attached to the main process)."""

    def __init__(self, url: str, headers: dict[str, str], open_timeout: float) -> None:
        self._url = url
        self._headers = headers
        self._open_timeout = open_timeout
        self._ws: ClientConnection | None = None
        self.binary = False
        self.exit_code: int | None = None
        self.detached = False
        self.ended = False

    async def __aenter__(self) -> Terminal:
        try:
            self._ws = await connect(
                self._url,
                additional_headers=self._headers,
                subprotocols=[Subprotocol(wire.SUBPROTOCOL)],
                max_size=MAX_MESSAGE,
                open_timeout=self._open_timeout,
                compression=None,  # raw bytes rarely compress; deflate costs CPU both ends
            )
        except InvalidStatus as exc:
            response = exc.response
            try:
                body: Any = json.loads(response.body or b"")
            except ValueError:
                body = (response.body or b"").decode(errors="replace")
            raise error_for(response.status_code, body) from exc
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"terminal {self._url}: {exc!r}") from exc
        self.binary = self._ws.subprotocol == wire.SUBPROTOCOL
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def ws(self) -> ClientConnection:
        if self._ws is None:
            raise DockyardError("the terminal is not open (use it with `async with`)")
        return self._ws

    async def send(self, data: bytes | str) -> None:
        """Input for the process (a str is sent as UTF-8)."""
        raw = data.encode() if isinstance(data, str) else data
        for start in range(0, len(raw), STDIN_CHUNK):
            piece = raw[start : start + STDIN_CHUNK]
            if self.binary:
                await self.ws.send(wire.stdin_frame(piece))
            else:
                text = base64.b64encode(piece).decode()
                await self._control({"type": "stdin", "data": text, "encoding": "base64"})

    async def close_stdin(self) -> None:
        """End of input: an exec process reads EOF on its stdin (its output and exit
        code still come). Binary mode only (``wire.STDIN_EOF``); attached to a
        container's main process the server ignores it."""
        if not self.binary:
            raise DockyardError("this server's terminal has no end-of-input frame")
        try:
            await self.ws.send(wire.STDIN_EOF)
        except ConnectionClosed as exc:
            raise TransportError("the terminal session has ended") from exc

    async def resize(self, cols: int, rows: int) -> None:
        await self._control({"type": "resize", "cols": cols, "rows": rows})

    async def signal(self, name: str) -> None:
        """``INT``, ``TERM``, ``KILL``, ``HUP``, ``QUIT``, ``USR1`` or ``USR2``."""
        await self._control({"type": "signal", "name": name})

    async def close(self) -> None:
        """End the session: an exec process is killed; attached, the client detaches."""
        await self._control({"type": "close"})

    async def _control(self, frame: dict[str, Any]) -> None:
        try:
            await self.ws.send(json.dumps(frame))
        except ConnectionClosed as exc:
            raise TransportError("the terminal session has ended") from exc

    def __aiter__(self) -> AsyncIterator[Output]:
        return self._outputs()

    async def _outputs(self) -> AsyncIterator[Output]:
        while not self.ended:
            try:
                message = await self.ws.recv()
            except ConnectionClosed as exc:
                self.ended = True
                if exc.rcvd is None or exc.rcvd.code != 1000:
                    raise TransportError(f"the terminal closed: {exc}") from exc
                return
            if isinstance(message, bytes):
                channel, data = wire.split(message)
                if channel in (STDOUT, STDERR):
                    yield Output(channel, data)
                continue
            output = self._on_text(message)
            if output is not None:
                yield output

    def _on_text(self, message: str) -> Output | None:
        frame = json.loads(message)
        kind = frame.get("type")
        if kind in ("stdout", "stderr"):  # JSON mode (a server without the subprotocol)
            data = frame.get("data", "")
            raw = base64.b64decode(data) if frame.get("encoding") == "base64" else data.encode()
            return Output(STDOUT if kind == "stdout" else STDERR, raw)
        if kind == "exit":
            self.ended = True
            self.exit_code = frame.get("code")
            self.detached = bool(frame.get("detached"))
        elif kind == "error":
            self.ended = True
            body = frame.get("error") or {}
            raise error_for(int(body.get("status", 500)), body)
        return None

    async def wait(self) -> int | None:
        """Read to the end (output is dropped); the exit code."""
        async for _ in self:
            pass
        return self.exit_code

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()


def terminal_url(
    base_url: str,
    cuid: str,
    *,
    cmd: str | None,
    tty: bool,
    cols: int,
    rows: int,
    replica: int | None,
) -> str:
    scheme, rest = base_url.split("://", 1)
    ws_scheme = "wss" if scheme == "https" else "ws"
    query: dict[str, Any] = {"cols": cols, "rows": rows, "tty": "true" if tty else "false"}
    if cmd is not None:
        query["cmd"] = cmd
    if replica is not None:
        query["replica"] = replica
    return f"{ws_scheme}://{rest.rstrip('/')}/ws/{cuid}?{urlencode(query)}"
