"""The WebSocket terminal ``/ws/{cuid}`` (SPEC §5).

Every session ends with exactly one ``exit`` frame (the real exit code) or one ``error``
frame, then a close with a meaningful code: 1000 after an exit, 1008 when refused or
revoked, 1007 for a malformed client frame, 1011 when the container vanished or the
engine failed, 1001 when the service shuts down.

A client that offers the subprotocol ``dockyard.v1.binary`` gets output as binary frames
(``domain/terminal/wire.py``) and may send stdin the same way; without it, the JSON
frames of seed 001 are used.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from dockyard.api.deps import Services, get_ws_principal
from dockyard.api.errors import (
    WS_FAILED,
    WS_REFUSED,
    ws_close_code,
    ws_error_frame,
    ws_refuse,
)
from dockyard.domain.terminal import wire
from dockyard.domain.terminal.batching import batched_frames
from dockyard.domain.terminal.framing import SIGNALS, Utf8Framer
from dockyard.domain.terminal.service import Connection
from dockyard.errors import DockyardError, NotFoundError, StateError, ValidationError

log = structlog.get_logger("dockyard.terminal")
router = APIRouter()

MAX_STDIN = 1024 * 1024


@router.websocket("/ws/{cuid}")
async def terminal(websocket: WebSocket, cuid: str) -> None:
    services: Services = websocket.app.state.services
    try:
        principal = await get_ws_principal(websocket)
    except DockyardError as exc:
        await ws_refuse(websocket, exc)
        return
    websocket.state.user = principal.username
    subprotocol = wire.SUBPROTOCOL if wire.SUBPROTOCOL in _offered(websocket) else None
    try:
        cols, rows, cmd, tty = _query(websocket)
        connection = await services.terminals.open(
            principal, cuid, cmd=cmd, tty=tty, cols=cols, rows=rows, replica=_replica(websocket)
        )
    except DockyardError as exc:
        await websocket.accept(subprotocol=subprotocol)
        await _final(websocket, ws_error_frame(websocket, exc), WS_REFUSED)
        return
    await websocket.accept(subprotocol=subprotocol)
    try:
        await _run(websocket, connection, binary=subprotocol is not None)
    finally:
        with suppress(Exception):
            await connection.close()
        services.terminals.release(connection)


def _offered(websocket: WebSocket) -> list[str]:
    return [str(p) for p in websocket.scope.get("subprotocols", [])]


async def _run(websocket: WebSocket, conn: Connection, *, binary: bool) -> None:
    outcome: dict[str, Any] = {}

    async def pump_out() -> None:
        if binary:
            # Chunks that queued up while a frame was being sent go out joined as one.
            async for frame in batched_frames(conn.read):
                await websocket.send_bytes(frame)  # type: ignore[arg-type]
        else:
            await _pump_json(websocket, conn)
        outcome["stream_ended"] = True

    async def pump_in() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                outcome["client_gone"] = True
                return
            if message.get("text") is not None:
                closed = await _handle(conn, message["text"])
            elif binary and message.get("bytes") is not None:
                closed = await _handle_binary(conn, message["bytes"])
            else:  # a binary frame without the subprotocol: not part of the protocol
                raise ValidationError("frames are JSON text", code="INVALID_FRAME")
            if closed:
                outcome["client_closed"] = True
                return

    failure = await _pump(conn, pump_out(), pump_in(), outcome)
    await _finish(websocket, conn, outcome, failure)


async def _pump_json(websocket: WebSocket, conn: Connection) -> None:
    """Output as seed 001's JSON frames: UTF-8 text where valid, base64 otherwise."""
    framers = {"stdout": Utf8Framer("stdout"), "stderr": Utf8Framer("stderr")}
    while (out := await conn.read()) is not None:
        for frame in framers[out.stream].feed(out.data):
            await websocket.send_text(_output_text(frame))
    for framer in framers.values():
        for frame in framer.flush():
            await websocket.send_text(_output_text(frame))


async def _pump(
    conn: Connection,
    pump_out: Coroutine[Any, Any, None],
    pump_in: Coroutine[Any, Any, None],
    outcome: dict[str, Any],
) -> BaseException | None:
    """Run both directions until one ends (or the session is ended); the failure, if any."""
    tasks = {
        asyncio.create_task(pump_out, name="terminal-out"),
        asyncio.create_task(pump_in, name="terminal-in"),
        asyncio.create_task(conn.session.ended.wait(), name="terminal-ended"),
    }
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    failure: BaseException | None = None
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            failure = task.exception()
    if outcome.get("client_closed") and conn.is_exec:
        # Let the killed process's last output and its exit code come through.
        await conn.end_by_client()
        out_task = next(t for t in pending if t.get_name() == "terminal-out")
        with suppress(TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(out_task), timeout=10)
    for task in pending:
        task.cancel()
    for task in pending:
        with suppress(BaseException):
            await task
    return failure


async def _finish(
    websocket: WebSocket,
    conn: Connection,
    outcome: dict[str, Any],
    failure: BaseException | None,
) -> None:
    """Exactly one final frame (SPEC §5), whatever ended the session."""
    if outcome.get("client_gone"):
        await conn.end_by_client()  # a vanished client leaves no exec process behind
        return
    if conn.session.reason is not None:
        reason_code, message, close_code = conn.session.reason
        ended = StateError(message, code=reason_code)
        await _final(websocket, ws_error_frame(websocket, ended), close_code)
        return
    if isinstance(failure, DockyardError):
        await _final(websocket, ws_error_frame(websocket, failure), ws_close_code(failure))
        return
    if failure is not None:
        log.warning("terminal.failed", error=type(failure).__name__)
        bug = DockyardError("terminal failed", code="INTERNAL")
        await _final(websocket, ws_error_frame(websocket, bug), WS_FAILED)
        return
    if outcome.get("client_closed") and not conn.is_exec:
        await _final(websocket, {"type": "exit", "code": None, "detached": True}, 1000)
        return
    try:
        code = await conn.exit_code()
    except DockyardError as exc:
        # The output ended and the engine cannot say how (it died, or froze past the
        # deadline): that is the final frame, not "removed" (issue 9 #1).
        await _final(websocket, ws_error_frame(websocket, exc), ws_close_code(exc))
        return
    if code is None:
        gone = NotFoundError("the container was removed", code="CONTAINER_GONE")
        await _final(websocket, ws_error_frame(websocket, gone), WS_FAILED)
    else:
        await _final(websocket, {"type": "exit", "code": code}, 1000)


async def _handle(conn: Connection, text: str) -> bool:
    """Apply one client frame; True when the client asked to close."""
    try:
        frame = json.loads(text)
        kind = frame["type"]
    except (ValueError, KeyError, TypeError):
        raise ValidationError("a frame is JSON with a 'type'", code="INVALID_FRAME") from None
    if kind == "stdin":
        data = frame.get("data", "")
        if not isinstance(data, str):
            raise ValidationError("stdin data must be a string", code="INVALID_FRAME")
        if frame.get("encoding", "utf8") == "base64":
            try:
                raw = base64.b64decode(data, validate=True)
            except binascii.Error:
                raise ValidationError("stdin data is not base64", code="INVALID_FRAME") from None
        else:
            raw = data.encode()
        if len(raw) > MAX_STDIN:
            raise ValidationError("stdin frame too large", code="FRAME_TOO_LARGE")
        await conn.write(raw)
    elif kind == "resize":
        cols, rows = frame.get("cols"), frame.get("rows")
        if not (
            isinstance(cols, int)
            and isinstance(rows, int)
            and 0 < cols <= 1000
            and 0 < rows <= 1000
        ):
            raise ValidationError("resize needs cols and rows (1..1000)", code="INVALID_FRAME")
        await conn.resize(cols, rows)
    elif kind == "signal":
        name = str(frame.get("name", "")).upper().removeprefix("SIG")
        if name not in SIGNALS:
            raise ValidationError(
                f"signal must be one of {', '.join(SIGNALS)}", code="INVALID_SIGNAL"
            )
        await conn.signal(name)
    elif kind == "close":
        return True
    else:
        raise ValidationError(f"unknown frame type {kind!r}", code="INVALID_FRAME")
    return False


async def _handle_binary(conn: Connection, frame: bytes) -> bool:
    """Apply one binary client frame: only stdin (channel 0) travels this way; an empty
    one (the channel byte alone) is the end of input (``wire.STDIN_EOF``)."""
    channel, data = wire.split(frame)
    if channel != wire.STDIN:
        raise ValidationError("a binary frame is stdin (channel 0)", code="INVALID_FRAME")
    if len(data) > MAX_STDIN:
        raise ValidationError("stdin frame too large", code="FRAME_TOO_LARGE")
    if data:
        await conn.write(data)
    else:
        await conn.close_stdin()
    return False


def _query(websocket: WebSocket) -> tuple[int, int, str | None, bool]:
    params = websocket.query_params
    try:
        cols = int(params.get("cols", "80"))
        rows = int(params.get("rows", "24"))
    except ValueError:
        raise ValidationError("cols and rows are numbers", code="INVALID_FIELD") from None
    if not (0 < cols <= 1000 and 0 < rows <= 1000):
        raise ValidationError("cols and rows must be 1..1000", code="INVALID_FIELD")
    tty = params.get("tty", "true").lower() not in ("false", "0", "no")
    return cols, rows, params.get("cmd"), tty


def _replica(websocket: WebSocket) -> int:
    """``?replica=K`` (default 1: the container itself)."""
    raw = websocket.query_params.get("replica", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ValidationError(
            "replica is a replica's index, 1 or more",
            code="INVALID_FIELD",
            details={"field": "replica", "provided": raw[:32]},
        )
    return int(raw)


def _output_text(frame: dict[str, str]) -> str:
    """An output frame as JSON text. Base64 needs no escaping, so that (largest) case is
    joined directly: json.dumps of 64 KiB strings was a third of the server's CPU in a
    100 MB ``cat`` (docs/benchmarks.md, terminal)."""
    if frame["encoding"] == "base64":
        return f'{{"type":"{frame["type"]}","data":"{frame["data"]}","encoding":"base64"}}'
    return json.dumps(frame, ensure_ascii=False)


async def _final(websocket: WebSocket, frame: dict[str, Any], close_code: int) -> None:
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    with suppress(Exception):
        await websocket.send_text(json.dumps(frame))
        await websocket.close(code=close_code)
