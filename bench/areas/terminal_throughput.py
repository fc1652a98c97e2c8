"""2. stdout throughput: ``cat`` of a file, ``tty=false``, through ``/ws`` (decoded bytes
counted until the ``exit`` frame, CRC-checked) vs a raw exec of the same ``cat``; the median
(and the best) of a few runs each, interleaved, with the CPU seconds of the server, dockerd
and this client over each transfer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import zlib
from typing import Any

from harness.context import Ctx
from harness.stats import ratio

from areas.terminal_sides import (
    BINARY,
    MIB,
    MODES,
    TARGETS,
    TRANSFER_TIMEOUT,
    BenchError,
    Cpu,
    decode,
    log,
    negotiated,
    raw_exec,
    ws_open,
)

# What a file is to a transfer: its path in the container, its size, its CRC-32.
File = tuple[str, int, int]


async def ws_cat(
    ctx: Ctx, cuid: str, file: File, compression: str | None, cpu: Cpu, binary: bool = False
) -> dict[str, Any]:
    path = file[0]
    got = 0
    check = 0
    frames = {"utf8": 0, "base64": 0}
    final: dict[str, Any] = {}
    before = cpu.now()
    t0 = time.perf_counter()
    first = 0.0
    async with asyncio.timeout(TRANSFER_TIMEOUT):
        ws = await ws_open(ctx, cuid, f"cat {path}", False, compression, binary)
        if binary and ws.subprotocol != BINARY:
            raise BenchError("the server did not accept the binary subprotocol")
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, bytes):  # binary mode: channel byte + raw bytes
                    if message[0] != 1:
                        raise BenchError(f"stderr from cat: {message[1:200]!r}")
                    if not got:
                        first = time.perf_counter() - t0
                    got += len(message) - 1
                    check = zlib.crc32(memoryview(message)[1:], check)
                    frames["binary"] = frames.get("binary", 0) + 1
                    continue
                frame = json.loads(message)
                kind = frame.get("type")
                if kind == "stdout":
                    data = decode(frame)
                    if not got:
                        first = time.perf_counter() - t0
                    got += len(data)
                    check = zlib.crc32(data, check)
                    encoding = str(frame.get("encoding"))
                    frames[encoding] = frames.get(encoding, 0) + 1
                elif kind == "stderr":
                    raise BenchError(f"stderr from cat: {decode(frame)[:200]!r}")
                else:
                    final = frame
                    break
            elapsed = time.perf_counter() - t0
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
    spent = Cpu.spent(before, cpu.now())
    if final.get("type") != "exit" or final.get("code") != 0:
        raise BenchError(f"/ws cat {path}: final frame {final}")
    _check(f"/ws cat {path}", got, check, file)
    return {
        "seconds": elapsed,
        "first_byte_s": first,
        "frames": frames,
        "extensions": negotiated(ws),
        **spent,
    }


async def raw_cat(docker: Any, cuid: str, file: File, cpu: Cpu) -> dict[str, Any]:
    path = file[0]
    got = 0
    check = 0
    messages = 0
    before = cpu.now()
    t0 = time.perf_counter()
    first = 0.0
    async with asyncio.timeout(TRANSFER_TIMEOUT):
        exe, stream = await raw_exec(docker, cuid, ["cat", path], False)
        try:
            while (message := await stream.read_out()) is not None:
                if message.stream == 2:
                    raise BenchError(f"stderr from cat: {bytes(message.data)[:200]!r}")
                if not got:
                    first = time.perf_counter() - t0
                got += len(message.data)
                check = zlib.crc32(message.data, check)
                messages += 1
            elapsed = time.perf_counter() - t0
        finally:
            with contextlib.suppress(Exception):
                await stream.close()
        info = await exe.inspect()
    spent = Cpu.spent(before, cpu.now())
    if info.get("ExitCode") != 0:
        raise BenchError(f"raw cat {path}: exit {info.get('ExitCode')}")
    _check(f"raw cat {path}", got, check, file)
    return {"seconds": elapsed, "first_byte_s": first, "messages": messages, **spent}


def _check(what: str, got: int, check: int, file: File) -> None:
    _path, size, crc = file
    if got != size or check != crc:
        raise BenchError(f"{what}: {got} bytes (crc {check:x}), expected {size} ({crc:x})")


def _median_run(runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    mid = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {
        "runs": len(runs),
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_all": [round(s, 3) for s in seconds],
        "mb_per_s": round(size / 1e6 / statistics.median(seconds), 1),
        "mb_per_s_best": round(size / 1e6 / min(seconds), 1),
        "median_run": {k: v for k, v in mid.items() if k != "seconds"},
    }


async def _rounds(
    ctx: Ctx, docker: Any, cuid: str, file: File, runs: int, cpu: Cpu
) -> dict[str, list[dict[str, Any]]]:
    """``runs`` rounds (after one warm-up round) of a raw transfer and one of each mode."""
    size = file[1]
    timings: dict[str, list[dict[str, Any]]] = {"raw": [], **{f"ws_{m}": [] for m in MODES}}
    timings["ws_binary"] = []
    for n in range(runs + 1):  # the first round is a warm-up
        row = {"raw": await raw_cat(docker, cuid, file, cpu)}
        for mode, compression in MODES.items():
            row[f"ws_{mode}"] = await ws_cat(ctx, cuid, file, compression, cpu)
        # binary frames as the SDK opens them (no compression)
        row["ws_binary"] = await ws_cat(ctx, cuid, file, None, cpu, binary=True)
        if n:
            for key, value in row.items():
                timings[key].append(value)
            log(
                "   "
                + ", ".join(f"{k} {size / 1e6 / v['seconds']:.0f} MB/s" for k, v in row.items())
            )
    return timings


def _entry(file: File, timings: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One file's figures: each side's median run, the ratios, and the verdict."""
    path, size, _crc = file
    entry: dict[str, Any] = {"path": path, "bytes": size}
    for key, values in timings.items():
        entry[key] = _median_run(values, size)
    raw_mbs = entry["raw"]["mb_per_s"]
    entry["ratio"] = ratio(entry["ws_deflate"]["mb_per_s"], raw_mbs)
    entry["ratio_plain"] = ratio(entry["ws_plain"]["mb_per_s"], raw_mbs)
    best = entry["raw"]["mb_per_s_best"]
    entry["ratio_best"] = ratio(entry["ws_deflate"]["mb_per_s_best"], best)
    entry["ratio_plain_best"] = ratio(entry["ws_plain"]["mb_per_s_best"], best)
    entry["target"] = f"ratio >= {TARGETS['throughput_ratio']}"
    entry["met"] = entry["ratio"] >= TARGETS["throughput_ratio"]
    entry["met_plain"] = entry["ratio_plain"] >= TARGETS["throughput_ratio"]
    entry["ratio_binary"] = ratio(entry["ws_binary"]["mb_per_s"], raw_mbs)
    entry["ratio_binary_best"] = ratio(entry["ws_binary"]["mb_per_s_best"], best)
    entry["target_binary"] = f"ratio >= {TARGETS['binary_ratio']}"
    entry["met_binary"] = entry["ratio_binary"] >= TARGETS["binary_ratio"]
    return entry


async def bench_throughput(
    ctx: Ctx, docker: Any, cuid: str, files: dict[str, File], runs: int
) -> dict[str, Any]:
    cpu = Cpu(ctx)
    results: dict[str, Any] = {}
    for label, file in files.items():
        path, size, _crc = file
        log(f"2. stdout of cat {path} ({size / MIB:.0f} MiB): {runs} runs each + 1 warm-up")
        results[label] = _entry(file, await _rounds(ctx, docker, cuid, file, runs, cpu))
    return results
