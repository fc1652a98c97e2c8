"""Load (issue 9): bursts of concurrent creates, then reads at a steady rate under writers.

1. ``--rounds`` rounds of ``--concurrent`` creates at once (``"start": true``): every
   answer must be a 201 or an explicit 4xx/429/503 (never a 5xx), no create may make two
   containers (the engine's managed containers are counted against the 201s), and after
   the deletes nothing is left.
2. ``--seconds`` of reads (``GET /containers/{cuid}`` and ``GET /containers?limit=50``) at
   ``--rate`` requests a second, while ``--writers`` loops of PATCH/start/stop run beside
   them, each pausing ``--writer-pause`` seconds between writes: no 5xx, reads' p99 ≤ 50 ms.

Run as root from the repository: ``.venv/bin/python bench/load_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import base
from harness.base import COMMAND, IMAGE, log
from harness.context import Ctx, new_ctx
from harness.session import run_session
from harness.stats import pct
from harness.table import print_rows, yes

OUT = base.RESULTS / "load-latest.json"
NETWORK = "dockyard-bench-load"
READ_P99_MS = 50.0
IN_FLIGHT = 16


def _client(ctx: Ctx, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=ctx.url, auth=ctx.auth, timeout=300, limits=limits)


def _managed(ctx: Ctx) -> set[str]:
    """The cuids of this run's containers the engine holds."""
    with ctx.engine() as engine:
        flt = json.dumps({"label": ["dockyard.managed=true"]})
        found = engine.get("/containers/json", params={"all": "true", "filters": flt}).json()
    return {c["Labels"].get("dockyard.cuid", "") for c in found} & ctx.api_cuids


async def _round(ctx: Ctx, client: httpx.AsyncClient, count: int) -> dict[str, int]:
    async def one() -> int:
        try:
            resp = await client.post(
                "/containers", json={"image": IMAGE, "command": COMMAND, "start": True}
            )
        except httpx.HTTPError:
            return 0
        if resp.status_code == 201:
            ctx.api_cuids.add(resp.json()["cuid"])
        return resp.status_code

    statuses: dict[str, int] = {}
    for code in await asyncio.gather(*(one() for _ in range(count))):
        statuses[str(code)] = statuses.get(str(code), 0) + 1
    return statuses


async def _bursts(ctx: Ctx, rounds: int, count: int) -> dict[str, Any]:
    totals: dict[str, int] = {}
    duplicates = leftovers = 0
    async with _client(ctx, count + 10) as client:
        for n in range(rounds):
            before = set(ctx.api_cuids)
            statuses = await _round(ctx, client, count)
            made = ctx.api_cuids - before
            duplicates += len(await asyncio.to_thread(_managed, ctx) - before - made)
            log(f"   round {n + 1}: {statuses}")
            for code, k in statuses.items():
                totals[code] = totals.get(code, 0) + k
            await asyncio.gather(*(client.delete(f"/containers/{c}") for c in made))
            leftovers += len(await asyncio.to_thread(_managed, ctx) & made)
            ctx.api_cuids -= made
    five = sum(k for code, k in totals.items() if code.startswith("5") or code == "0")
    return {
        "rounds": rounds,
        "concurrent": count,
        "statuses": totals,
        "5xx": five,
        "duplicates": duplicates,
        "leftovers": leftovers,
        "met": five == 0 and duplicates == 0 and leftovers == 0,
    }


async def _writer(
    client: httpx.AsyncClient, cuid: str, stop: float, codes: list[int], pause: float
) -> None:
    """One writer: PATCH (a recreate), stop, start, … with ``pause`` seconds between
    writes (0: back to back, which keeps Compose busy on every core)."""
    i = 0
    while time.monotonic() < stop:
        i += 1
        step = (
            client.patch(f"/containers/{cuid}", json={"env": {"N": str(i)}})
            if i % 3 == 0
            else client.post(f"/containers/{cuid}/{'stop' if i % 3 == 1 else 'start'}")
        )
        codes.append((await step).status_code)
        if pause:
            await asyncio.sleep(pause)  # the writer's pace, not synchronisation


async def _reader(
    client: httpx.AsyncClient, targets: list[str], rate: float, stop: float
) -> tuple[list[float], list[int]]:
    """Reads paced at ``rate`` a second, at most IN_FLIGHT at once: a client that cannot
    keep up (it shares the server's two cores) sends fewer, and says so, rather than
    piling up requests it cannot even write."""
    latencies: list[float] = []
    codes: list[int] = []
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def read(path: str) -> None:
        try:
            t0 = time.perf_counter()
            resp = await client.get(path)
            latencies.append((time.perf_counter() - t0) * 1000)
            codes.append(resp.status_code)
        finally:
            gate.release()

    pending: set[asyncio.Task[None]] = set()
    started, sent = time.monotonic(), 0
    while time.monotonic() < stop:
        if sent >= (time.monotonic() - started) * rate:
            await asyncio.sleep(0.002)  # pacing the load, not synchronising
            continue
        await gate.acquire()
        path = "/containers?limit=50" if sent % 5 == 4 else f"/containers/{targets[sent % 2]}"
        task = asyncio.create_task(read(path))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
    await asyncio.gather(*pending)
    return latencies, codes


async def _steady(
    ctx: Ctx, seconds: float, rate: float, writers: int, pause: float
) -> dict[str, Any]:
    async with _client(ctx, 200) as client:
        made = [
            (await client.post("/containers", json={"image": IMAGE, "command": COMMAND})).json()
            for _ in range(writers + 2)
        ]
        cuids = [m["cuid"] for m in made]
        ctx.api_cuids.update(cuids)
        stop = time.monotonic() + seconds
        write_codes: list[int] = []
        loops = [_writer(client, c, stop, write_codes, pause) for c in cuids[2:]]
        (latencies, codes), *_ = await asyncio.gather(
            _reader(client, cuids[:2], rate, stop), *loops
        )
        await asyncio.gather(*(client.delete(f"/containers/{c}") for c in cuids))
        ctx.api_cuids.difference_update(cuids)
    five = sum(1 for c in codes + write_codes if c >= 500)
    p99 = pct(latencies, 99)
    return {
        "seconds": seconds,
        "rate": rate,
        "achieved_rate": round(len(codes) / seconds, 1),
        "writers": writers,
        "writer_pause_s": pause,
        "reads": len(codes),
        "writes": len(write_codes),
        "5xx": five,
        "read_p50_ms": round(pct(latencies, 50), 2),
        "read_p99_ms": round(p99, 2),
        "met": five == 0 and p99 <= READ_P99_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--writers", type=int, default=10)
    parser.add_argument("--writer-pause", type=float, default=1.0, help="seconds between writes")
    args = parser.parse_args()

    def measure(ctx: Ctx, b: dict[str, Any]) -> None:
        if args.rounds:
            log(f"1. {args.rounds} rounds of {args.concurrent} concurrent creates")
            b["bursts"] = asyncio.run(_bursts(ctx, args.rounds, args.concurrent))
        if args.seconds:
            log(
                f"2. {args.rate:g} reads/s for {args.seconds:g} s beside {args.writers} writers"
                f" (a write, then {args.writer_pause:g} s)"
            )
            b["steady"] = asyncio.run(
                _steady(ctx, args.seconds, args.rate, args.writers, args.writer_pause)
            )

    ctx = new_ctx("dyload-", network=NETWORK, keep_log=base.RESULTS / "load-latest-server.log")
    results, status = run_session(ctx, measure, out=OUT)
    bursts, steady = results["benchmarks"].get("bursts"), results["benchmarks"].get("steady")
    rows = []
    if bursts:
        rows.append(
            [
                f"creates: {bursts['rounds']} x {bursts['concurrent']} at once",
                f"{bursts['statuses']}",
                f"5xx {bursts['5xx']}, dup {bursts['duplicates']}, left {bursts['leftovers']}",
                "0 / 0 / 0",
                yes(bursts["met"]),
            ]
        )
    if steady:
        rows.append(
            [
                f"reads {steady['achieved_rate']:g}/s (asked {steady['rate']:g}), "
                f"{steady['writers']} writers (pause {steady['writer_pause_s']:g} s),"
                f" {steady['seconds']:g} s",
                f"p50 {steady['read_p50_ms']} ms, p99 {steady['read_p99_ms']} ms",
                f"5xx {steady['5xx']} of {steady['reads'] + steady['writes']}",
                f"0 x 5xx, p99 <= {READ_P99_MS:g} ms",
                yes(steady["met"]),
            ]
        )
    print_rows(["load", "answers", "faults", "target", "met"], rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
