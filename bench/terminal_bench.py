"""The WebSocket terminal against the raw Engine API (issue 4), in one run.

Run from the repository root, as root, with a Docker engine and the local image
``dockyard-test/busybox:latest`` (``bash scripts/test-images.sh``); nothing is pulled:
``.venv/bin/python bench/terminal_bench.py``. It starts its own ``dockyard serve`` on
127.0.0.1:<free port> with its data in a temporary directory (bench/harness),
creates one container through the API and measures, each against a raw exec on the same
container through aiodocker (the engine's hijacked exec stream), in the same run:

1. Keystroke round trip: ``/ws/{cuid}?cmd=cat`` (exec with a TTY) vs a raw TTY exec of
   ``cat``. One ``x`` at a time, timed until it is seen again in the output (the TTY's
   echo: ``cat`` itself only gets the line at a newline). The sessions are open side by
   side and the keystrokes interleaved; 500 each after 50 warm-up. Target: p50 <= 2 ms.
2. stdout throughput: ``cat`` of a 100 MiB file of random bytes (mostly not UTF-8: sent as
   base64) and of a 100 MiB text file (sent as utf8), ``tty=false``, through ``/ws``
   (decoded bytes counted until the ``exit`` frame, CRC-checked) vs a raw exec of the same
   ``cat``; the median (and the best) of five runs each, interleaved. Target: Dockyard at
   least 0.5 x raw.

The WebSocket client is the ``websockets`` package's asyncio client with its defaults
(it offers permessage-deflate, as browsers do; the table says whether the server accepted
it); each figure is also taken with compression off. To tell what a shortfall is made of,
the run also records the server's, dockerd's and the client's CPU seconds per transfer and
times, in this process, each step of a chunk's way: the server's framing (UTF-8 check,
base64), ``json.dumps`` and WebSocket send (with and without deflate), the client's
WebSocket parsing and JSON + base64 decoding.

It prints a table and writes ``bench/results/terminal.json``. Everything it makes (server,
container, temporary directory, the network if it created it) is removed at the end, also
after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import sys
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/harness: the server, clean-up and statistics helpers.
from harness import base
from harness.containers import api_create
from harness.context import Ctx, new_ctx
from harness.server import proc_cpu, server_cpu
from harness.session import run_session
from harness.stats import ratio, summary

OUT = base.RESULTS / "terminal.json"
# Its own network, so that a concurrent bench/run.py or observe_bench.py and this script
# never remove each other's.
NETWORK = "dockyard-bench-terminal"
MIB = 1024 * 1024
TARGETS = {"keystroke_p50_ms": 2.0, "throughput_ratio": 0.5}
# The container's processes (the server's DEFAULT_USER_UID); the raw exec runs as the same
# user, in the same folder, with the same environment as Dockyard's.
EXEC_USER = f"{base.UID}:{base.GID}"
EXEC_ENV = {"TERM": "xterm-256color"}
# Deadlines (seconds): every wait below is bounded by one of these.
KEY_TIMEOUT = 5.0
OPEN_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 300.0
CLOSE_TIMEOUT = 15.0
TOTAL_TIMEOUT = 1800.0
# A TTY in canonical mode keeps at most 4095 characters of a line; no newline is sent.
MAX_KEYS = 4000
# compression= of the websockets client: its default, and off.
MODES = {"deflate": "deflate", "plain": None}


def log(msg: str) -> None:
    base.log(msg, "terminal-bench")


class BenchError(base.BenchError):
    pass


# -- CPU accounting -----------------------------------------------------------------------


def _dockerd_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "dockerd":
                    return int(entry.name)
    return None


class Cpu:
    """CPU seconds of the server, the engine (dockerd) and this client over a span."""

    def __init__(self, ctx: Ctx, dockerd: int | None) -> None:
        self.ctx = ctx
        self.dockerd = dockerd

    def now(self) -> tuple[float, float, float]:
        server = server_cpu(self.ctx)[0]
        engine = proc_cpu(self.dockerd)[0] if self.dockerd else 0.0
        return server, engine, time.process_time()

    @staticmethod
    def spent(a: tuple[float, float, float], b: tuple[float, float, float]) -> dict[str, float]:
        return {
            "server_s": round(b[0] - a[0], 3),
            "dockerd_s": round(b[1] - a[1], 3),
            "client_s": round(b[2] - a[2], 3),
        }


# -- the two sides ------------------------------------------------------------------------


def decode(frame: dict[str, Any]) -> bytes:
    data = str(frame.get("data", ""))
    return base64.b64decode(data) if frame.get("encoding") == "base64" else data.encode()


def ws_url(ctx: Ctx, cuid: str, cmd: str, tty: bool) -> str:
    query = urllib.parse.urlencode({"cmd": cmd, "tty": "true" if tty else "false"})
    return f"ws://127.0.0.1:{ctx.port}/ws/{cuid}?{query}"


def basic_auth(ctx: Ctx) -> dict[str, str]:
    user, password = ctx.auth
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def ws_open(ctx: Ctx, cuid: str, cmd: str, tty: bool, compression: str | None) -> Any:
    from websockets.asyncio.client import connect

    return await connect(
        ws_url(ctx, cuid, cmd, tty),
        additional_headers=basic_auth(ctx),
        compression=compression,
        max_size=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
        ping_interval=None,  # the server pings every 5 s; the client answers
        proxy=None,
    )


def negotiated(ws: Any) -> str:
    header = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
    return str(header or "none")


async def ws_finish(ws: Any) -> dict[str, Any]:
    """Read to the final frame (bounded), then let the close complete."""
    final: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("type") in ("exit", "error"):
                    final = frame
                    break
    with contextlib.suppress(Exception):
        await ws.close()
    return final


async def raw_exec(docker: Any, name: str, argv: list[str], tty: bool) -> tuple[Any, Any]:
    container = await docker.containers.get(name)
    exe = await container.exec(
        argv,
        stdin=True,
        stdout=True,
        stderr=True,
        tty=tty,
        user=EXEC_USER,
        workdir="/app",
        environment=EXEC_ENV,
    )
    stream = exe.start(detach=False)
    await stream._init()
    return exe, stream


# -- 1. keystrokes --------------------------------------------------------------------------


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


async def bench_keys(ctx: Ctx, docker: Any, cuid: str, count: int, warmup: int) -> dict[str, Any]:
    log(f"1. keystrokes: {count} each after {warmup} warm-up, /ws (deflate, plain) vs raw exec")
    sockets: dict[str, Any] = {}
    raw_stream = None
    try:
        for mode, compression in MODES.items():
            sockets[mode] = await ws_open(ctx, cuid, "cat", True, compression)
        _exe, raw_stream = await raw_exec(docker, f"{cuid}-app-1", ["cat"], True)
        sides = {f"ws_{m}": ws_key_side(ws) for m, ws in sockets.items()}
        sides["raw"] = raw_key_side(raw_stream)
        await asyncio.sleep(0.2)  # let the sessions settle (the TTY's initial resize)
        for n in range(warmup + count):
            for side in sides.values():
                dt = await side.key()
                if n >= warmup:
                    side.times.append(dt)
        results: dict[str, Any] = {
            "keys": count,
            "warmup": warmup,
            "extensions": {m: negotiated(ws) for m, ws in sockets.items()},
        }
        for key, side in sides.items():
            results[key] = {**summary(side.times), "extra_echoes": side.extra_echoes}
    finally:
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
    results["final_frames"] = finals
    target = TARGETS["keystroke_p50_ms"]
    main = results["ws_deflate"]
    results["ratio_p50"] = ratio(main["p50_ms"], results["raw"]["p50_ms"])
    results["ratio_p50_plain"] = ratio(results["ws_plain"]["p50_ms"], results["raw"]["p50_ms"])
    results["target"] = f"p50 <= {target} ms"
    results["met"] = main["p50_ms"] <= target
    results["met_plain"] = results["ws_plain"]["p50_ms"] <= target
    return results


# -- 2. throughput ----------------------------------------------------------------------------


async def ws_cat(
    ctx: Ctx, cuid: str, path: str, size: int, crc: int, compression: str | None, cpu: Cpu
) -> dict[str, Any]:
    got = 0
    check = 0
    frames = {"utf8": 0, "base64": 0}
    final: dict[str, Any] = {}
    before = cpu.now()
    t0 = time.perf_counter()
    first = 0.0
    async with asyncio.timeout(TRANSFER_TIMEOUT):
        ws = await ws_open(ctx, cuid, f"cat {path}", False, compression)
        try:
            while True:
                frame = json.loads(await ws.recv())
                kind = frame.get("type")
                if kind == "stdout":
                    data = decode(frame)
                    if not got:
                        first = time.perf_counter() - t0
                    got += len(data)
                    check = zlib.crc32(data, check)
                    frames[str(frame.get("encoding"))] = (
                        frames.get(str(frame.get("encoding")), 0) + 1
                    )
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
    if got != size or check != crc:
        raise BenchError(f"/ws cat {path}: {got} bytes (crc {check:x}), expected {size} ({crc:x})")
    return {
        "seconds": elapsed,
        "first_byte_s": first,
        "frames": frames,
        "extensions": negotiated(ws),
        **spent,
    }


async def raw_cat(
    docker: Any, cuid: str, path: str, size: int, crc: int, cpu: Cpu
) -> dict[str, Any]:
    got = 0
    check = 0
    messages = 0
    before = cpu.now()
    t0 = time.perf_counter()
    first = 0.0
    async with asyncio.timeout(TRANSFER_TIMEOUT):
        exe, stream = await raw_exec(docker, f"{cuid}-app-1", ["cat", path], False)
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
    if got != size or check != crc:
        raise BenchError(f"raw cat {path}: {got} bytes (crc {check:x}), expected {size} ({crc:x})")
    return {"seconds": elapsed, "first_byte_s": first, "messages": messages, **spent}


def _median_run(runs: list[dict[str, Any]], size: int) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    mid = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    out = {
        "runs": len(runs),
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_all": [round(s, 3) for s in seconds],
        "mb_per_s": round(size / 1e6 / statistics.median(seconds), 1),
        "mb_per_s_best": round(size / 1e6 / min(seconds), 1),
        "median_run": {k: v for k, v in mid.items() if k != "seconds"},
    }
    return out


async def bench_throughput(
    ctx: Ctx, docker: Any, cuid: str, files: dict[str, tuple[str, int, int]], runs: int
) -> dict[str, Any]:
    cpu = Cpu(ctx, _dockerd_pid())
    results: dict[str, Any] = {}
    for label, (path, size, crc) in files.items():
        log(f"2. stdout of cat {path} ({size / MIB:.0f} MiB): {runs} runs each + 1 warm-up")
        timings: dict[str, list[dict[str, Any]]] = {"raw": [], **{f"ws_{m}": [] for m in MODES}}
        for n in range(runs + 1):  # the first round is a warm-up
            row = {"raw": await raw_cat(docker, cuid, path, size, crc, cpu)}
            for mode, compression in MODES.items():
                row[f"ws_{mode}"] = await ws_cat(ctx, cuid, path, size, crc, compression, cpu)
            if n:
                for key, value in row.items():
                    timings[key].append(value)
                log(
                    "   "
                    + ", ".join(f"{k} {size / 1e6 / v['seconds']:.0f} MB/s" for k, v in row.items())
                )
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
        results[label] = entry
    return results


# -- where the time goes: the per-chunk work, timed in this process -------------------------


def _best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The fastest of a few runs (the machine's noise only ever adds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _ws_protocol(side: Any, deflate: bool) -> Any:
    """A websockets sans-I/O connection in the OPEN state, with permessage-deflate as the
    server negotiates it (uvicorn: 12-bit windows, memLevel 5) when asked."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.protocol import Protocol

    proto = Protocol(side, max_size=None)
    if deflate:
        proto.extensions = [PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})]
    return proto


def encoding_costs(data: bytes, chunk: int) -> dict[str, Any]:
    """MB/s (of file bytes) of each step an engine chunk goes through on its way to the
    client's decoded bytes, one core, the fastest of three runs: on the server, the framing
    (dockyard.domain.terminal.Utf8Framer: the UTF-8 check and base64), ``json.dumps`` (as
    api/terminal.py does) and the WebSocket library's ``send_text`` (the websockets sans-I/O
    protocol uvicorn uses; with and without permessage-deflate); on the client, the same
    library's parsing (inflate, UTF-8 check) and ``json.loads`` + base64 decoding."""
    sys.path.insert(0, str(base.REPO / "src"))
    from websockets.protocol import Side

    from dockyard.domain.terminal.framing import Utf8Framer

    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    mb = len(data) / 1e6

    def frame() -> list[dict[str, str]]:
        framer = Utf8Framer("stdout")
        return [f for c in chunks for f in framer.feed(c)] + framer.flush()

    def dumps() -> list[str]:
        return [json.dumps(f) for f in frames]

    def send(deflate: bool) -> Callable[[], bytes]:
        def run() -> bytes:
            proto = _ws_protocol(Side.SERVER, deflate)
            out = []
            for text in texts:
                proto.send_text(text.encode())
                out += proto.data_to_send()
            return b"".join(out)

        return run

    def receive(wire: bytes, deflate: bool) -> Callable[[], list[str]]:
        def run() -> list[str]:
            proto = _ws_protocol(Side.CLIENT, deflate)
            got: list[str] = []
            for start in range(0, len(wire), 256 * 1024):  # as a socket delivers it
                proto.receive_data(wire[start : start + 256 * 1024])
                got += [bytes(e.data).decode() for e in proto.events_received()]
            return got

        return run

    def loads() -> int:
        return sum(len(decode(json.loads(text))) for text in texts)

    frame_s, frames = _best(frame)
    json_s, texts = _best(dumps)
    result: dict[str, Any] = {
        "sample_bytes": len(data),
        "chunk_bytes": chunk,
        "frames": len(texts),
        "json_bytes_per_file_byte": round(sum(len(t) for t in texts) / len(data), 3),
        "server_framing_mb_per_s": round(mb / frame_s, 1),
        "server_json_dumps_mb_per_s": round(mb / json_s, 1),
    }
    for mode in MODES:
        send_s, wire = _best(send(mode == "deflate"))
        recv_s, got = _best(receive(wire, mode == "deflate"))
        if got != texts:
            raise BenchError(f"websockets round trip ({mode}) changed the frames")
        result[f"wire_bytes_per_file_byte_{mode}"] = round(len(wire) / len(data), 3)
        result[f"server_ws_send_{mode}_mb_per_s"] = round(mb / send_s, 1)
        result[f"client_ws_receive_{mode}_mb_per_s"] = round(mb / recv_s, 1)
    loads_s, out = _best(loads)
    if out != len(data):
        raise BenchError(f"framing round trip: {out} bytes of {len(data)}")
    result["client_json_loads_decode_mb_per_s"] = round(mb / loads_s, 1)
    return result


# -- set-up -------------------------------------------------------------------------------------


def make_files(app: Path, size: int) -> dict[str, tuple[str, int, int]]:
    """A random file and a text file of ``size`` bytes in the container's /app."""
    random_bytes = os.urandom(size)
    line = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(2000))
    text = (line * (size // len(line) + 1))[:size]
    files = {}
    for label, name, data in (("random", "big.bin", random_bytes), ("text", "big.txt", text)):
        path = app / name
        path.write_bytes(data)
        os.chown(path, base.UID, base.GID)
        path.chmod(0o644)
        files[label] = (f"/app/{name}", size, zlib.crc32(data))
    return files


def create(ctx: Ctx, client: httpx.Client) -> str:
    return api_create(client, ctx, command="sleep 3600")[0]


async def measure(ctx: Ctx, cuid: str, args: argparse.Namespace) -> dict[str, Any]:
    import aiodocker

    app = ctx.data_dir / "containers" / cuid / "app"
    if not app.is_dir():
        raise BenchError(f"{app} is not the container's /app folder")
    size = args.size_mib * MIB
    log(f"writing two {args.size_mib} MiB files into {app}")
    files = make_files(app, size)
    out: dict[str, Any] = {}
    async with asyncio.timeout(TOTAL_TIMEOUT):
        docker = aiodocker.Docker(url=f"unix://{base.docker_socket()}")
        try:
            out["keystroke"] = await bench_keys(ctx, docker, cuid, args.keys, args.warmup)
            out["throughput"] = await bench_throughput(ctx, docker, cuid, files, args.runs)
        finally:
            await docker.close()
    chunk = out["throughput"]["random"]["raw"]["median_run"]["messages"]
    chunk = max(1, size // max(1, chunk))
    sample = min(size, 32 * MIB)
    log(f"3. per-chunk costs in-process ({sample // MIB} MiB, {chunk}-byte chunks)")
    out["costs"] = {
        label: encoding_costs((app / Path(path).name).read_bytes()[:sample], chunk)
        for label, (path, _size, _crc) in files.items()
    }
    out["breakdown"] = breakdown(out["throughput"], out["costs"])
    return out


def breakdown(throughput: dict[str, Any], costs: dict[str, Any]) -> dict[str, Any]:
    """The server's CPU seconds of a transfer (its median run) split into the steps timed
    in-process (framing, json.dumps, the WebSocket library's send: estimates from
    ``encoding_costs``) and the rest (reading the engine's stream, the event loop, system
    calls); and how busy the server's process was over the transfer."""
    out: dict[str, Any] = {}
    for label, entry in throughput.items():
        c = costs[label]
        mb = entry["bytes"] / 1e6
        for mode in MODES:
            run = entry[f"ws_{mode}"]
            server = run["median_run"]["server_s"]
            sent = "deflate" if "deflate" in run["median_run"]["extensions"] else "plain"
            steps = {
                "framing_s": mb / c["server_framing_mb_per_s"],
                "json_dumps_s": mb / c["server_json_dumps_mb_per_s"],
                "ws_send_s": mb / c[f"server_ws_send_{sent}_mb_per_s"],
            }
            out[f"{label} ws_{mode}"] = {
                "wall_s": run["seconds_median"],
                "server_cpu_s": server,
                "server_busy": round(server / run["seconds_median"], 2),
                **{k: round(v, 3) for k, v in steps.items()},
                "rest_s": round(server - sum(steps.values()), 3),
                "client_cpu_s": run["median_run"]["client_s"],
            }
    return out


# -- report -------------------------------------------------------------------------------------


def mode_label(mode: str, extensions: str) -> str:
    if mode == "plain":
        return "no compression"
    return "deflate" if "deflate" in extensions else "deflate offered, declined"


def print_table(results: dict[str, Any]) -> None:
    b = results["benchmarks"]
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    table = [("benchmark", "Dockyard", "raw exec", "ratio (best)", "target", "met")]
    if "keystroke" in b:
        k = b["keystroke"]
        raw = f"{k['raw']['p50_ms']:.3f} / {k['raw']['p99_ms']:.3f} ms"
        for mode in MODES:
            r = k[f"ws_{mode}"]
            label = mode_label(mode, k["extensions"][mode])
            table.append(
                (
                    f"1. keystroke p50 / p99, n={k['keys']} ({label})",
                    f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} ms",
                    raw,
                    f"{k['ratio_p50' if mode == 'deflate' else 'ratio_p50_plain']:.2f}",
                    k["target"],
                    yes(k["met" if mode == "deflate" else "met_plain"]),
                )
            )
    for label, t in b.get("throughput", {}).items():
        what = "base64" if label == "random" else "utf8"
        for mode in MODES:
            key = "ratio" if mode == "deflate" else "ratio_plain"
            ws = t[f"ws_{mode}"]
            name = mode_label(mode, ws["median_run"]["extensions"])
            table.append(
                (
                    f"2. cat {t['bytes'] // MIB} MiB {label} ({what}, {name}), MB/s",
                    f"{ws['mb_per_s']:.0f} (best {ws['mb_per_s_best']:.0f})",
                    f"{t['raw']['mb_per_s']:.0f} (best {t['raw']['mb_per_s_best']:.0f})",
                    f"{t[key]:.2f} ({t[key + '_best']:.2f})",
                    t["target"],
                    yes(t["met" if mode == "deflate" else "met_plain"]),
                )
            )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print()
    for n, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for label, t in b.get("throughput", {}).items():
        cpu = {k: t[k]["median_run"] for k in ("ws_deflate", "ws_plain", "raw")}
        print(
            f"  * {label}: CPU s (server / dockerd / client) per transfer: "
            + "; ".join(
                f"{k} {v['server_s']:.2f} / {v['dockerd_s']:.2f} / {v['client_s']:.2f}"
                for k, v in cpu.items()
            )
        )
    for label, c in b.get("costs", {}).items():
        print(
            f"  * {label}, in-process MB/s: server framing {c['server_framing_mb_per_s']}, "
            f"json.dumps {c['server_json_dumps_mb_per_s']}, ws send "
            f"{c['server_ws_send_plain_mb_per_s']} ({c['server_ws_send_deflate_mb_per_s']} "
            f"deflate); client ws receive {c['client_ws_receive_plain_mb_per_s']} "
            f"({c['client_ws_receive_deflate_mb_per_s']} deflate), json.loads+decode "
            f"{c['client_json_loads_decode_mb_per_s']}"
        )
    for key, d in b.get("breakdown", {}).items():
        print(
            f"  * {key}: wall {d['wall_s']:.2f} s; server CPU {d['server_cpu_s']:.2f} s "
            f"(busy {d['server_busy']:.0%}) ~ framing {d['framing_s']:.2f} + json.dumps "
            f"{d['json_dumps_s']:.2f} + ws send {d['ws_send_s']:.2f} + rest {d['rest_s']:.2f}; "
            f"client CPU {d['client_cpu_s']:.2f} s"
        )
    m = results.get("machine", {})
    print(
        f"\n{m.get('cpus')} CPUs, Docker {m.get('docker_server_version')}, load "
        f"{m.get('load_average_at_start')} -> {results.get('load_average_at_end')}, "
        f"CPU busy {results.get('cpu_during_run', {}).get('busy_pct')} %, steal "
        f"{results.get('cpu_during_run', {}).get('steal_pct')} %; "
        f"{results['duration_s']:.0f} s; figures in {OUT}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500, help="timed keystrokes each side")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up keystrokes each side")
    parser.add_argument("--runs", type=int, default=5, help="timed transfers each side")
    parser.add_argument("--size-mib", type=int, default=100, help="size of each file")
    args = parser.parse_args()
    if args.keys + args.warmup > MAX_KEYS or args.keys < 1 or args.runs < 1:
        parser.error(f"1 <= keys, keys + warmup <= {MAX_KEYS}, runs >= 1")
    if os.geteuid() != 0:
        print("terminal-bench: run as root (the server drives Docker)", file=sys.stderr)
        return 2

    def run(ctx: Ctx, b: dict[str, Any]) -> None:
        with ctx.client() as client:
            cuid = create(ctx, client)
        b.update(asyncio.run(measure(ctx, cuid, args)))

    # bench/run.py's own latest-server.log stays as it is.
    results, status = run_session(new_ctx("dyterm-", network=NETWORK, keep_log=None), run, out=OUT)
    if results["complete"] and results["benchmarks"]:
        print_table(results)
    return status


if __name__ == "__main__":
    sys.exit(main())
