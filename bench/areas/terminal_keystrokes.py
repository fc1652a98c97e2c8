"""1. Keystroke round trip: ``/ws/{cuid}?cmd=cat`` (an exec with a TTY) vs a raw TTY exec
of ``cat``. One ``x`` at a time, timed until it is seen again in the output (the TTY's echo:
``cat`` itself only gets the line at a newline). The sessions are open side by side and the
keystrokes interleaved."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.context import Ctx
from harness.stats import ratio, summary

from areas.terminal_sides import (
    CLOSE_TIMEOUT,
    KEY_TIMEOUT,
    MODES,
    TARGETS,
    BenchError,
    decode,
    log,
    negotiated,
    raw_exec,
    ws_finish,
    ws_open,
)

# A TTY in canonical mode keeps at most 4095 characters of a line; no newline is sent.
MAX_KEYS = 4000


class KeySide:
    """One terminal: send ``x``, wait until an ``x`` comes back."""

    def __init__(self, send: Callable[[], Awaitable[None]], recv: Callable[[], Awaitable[bytes]]):
        self._send = send
        self._recv = recv
        self.times: list[float] = []
        self.extra_echoes = 0

    async def key(self) -> float:
        got = bytearray()
        async with asyncio.timeout(KEY_TIMEOUT):
            t0 = time.perf_counter()
            await self._send()
            while b"x" not in got:
                got += await self._recv()
            dt = time.perf_counter() - t0
        # With a TTY in canonical mode there is one echo per key; count any more (they
        # would make the next key look faster) so that the report can say so.
        self.extra_echoes += got.count(b"x") - 1
        return dt


def ws_key_side(ws: Any) -> KeySide:
    message = json.dumps({"type": "stdin", "data": "x", "encoding": "utf8"})

    async def send() -> None:
        await ws.send(message)

    async def recv() -> bytes:
        frame = json.loads(await ws.recv())
        if frame.get("type") in ("stdout", "stderr"):
            return decode(frame)
        raise BenchError(f"the terminal ended during the keystrokes: {frame}")

    return KeySide(send, recv)


def raw_key_side(stream: Any) -> KeySide:
    async def send() -> None:
        await stream.write_in(b"x")

    async def recv() -> bytes:
        message = await stream.read_out()
        if message is None:
            raise BenchError("the raw exec ended during the keystrokes")
        return bytes(message.data)

    return KeySide(send, recv)


async def _type(sides: dict[str, KeySide], count: int, warmup: int) -> None:
    """``warmup + count`` keys on each side in turn; the last ``count`` are kept."""
    await asyncio.sleep(0.2)  # let the sessions settle (the TTY's initial resize)
    for n in range(warmup + count):
        for side in sides.values():
            dt = await side.key()
            if n >= warmup:
                side.times.append(dt)


async def _close(sockets: dict[str, Any], raw_stream: Any) -> dict[str, dict[str, Any]]:
    """Close every session (bounded); the final frame of each ``/ws`` one."""
    finals = {}
    for mode, ws in sockets.items():
        with contextlib.suppress(Exception):
            await ws.send(json.dumps({"type": "close"}))
        finals[mode] = await ws_finish(ws)
    if raw_stream is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await raw_stream.write_in(b"\x03")  # ^C: SIGINT through the TTY
                while await raw_stream.read_out() is not None:
                    pass
        with contextlib.suppress(Exception):
            await raw_stream.close()
    return finals


def _judge(results: dict[str, Any]) -> dict[str, Any]:
    target = TARGETS["keystroke_p50_ms"]
    main, plain, raw = results["ws_deflate"], results["ws_plain"], results["raw"]
    results["ratio_p50"] = ratio(main["p50_ms"], raw["p50_ms"])
    results["ratio_p50_plain"] = ratio(plain["p50_ms"], raw["p50_ms"])
    results["target"] = f"p50 <= {target} ms"
    results["met"] = main["p50_ms"] <= target
    results["met_plain"] = plain["p50_ms"] <= target
    return results


async def bench_keys(ctx: Ctx, docker: Any, cuid: str, count: int, warmup: int) -> dict[str, Any]:
    log(f"1. keystrokes: {count} each after {warmup} warm-up, /ws (deflate, plain) vs raw exec")
    sockets: dict[str, Any] = {}
    raw_stream = None
    try:
        for mode, compression in MODES.items():
            sockets[mode] = await ws_open(ctx, cuid, "cat", True, compression)
        _exe, raw_stream = await raw_exec(docker, cuid, ["cat"], True)
        sides = {f"ws_{m}": ws_key_side(ws) for m, ws in sockets.items()}
        sides["raw"] = raw_key_side(raw_stream)
        await _type(sides, count, warmup)
        results: dict[str, Any] = {
            "keys": count,
            "warmup": warmup,
            "extensions": {m: negotiated(ws) for m, ws in sockets.items()},
        }
        for key, side in sides.items():
            results[key] = {**summary(side.times), "extra_echoes": side.extra_echoes}
    finally:
        finals = await _close(sockets, raw_stream)
    results["final_frames"] = finals
    return _judge(results)
