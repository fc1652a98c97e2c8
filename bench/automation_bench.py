"""Containers that look after themselves (issue 11): what the automation costs.

1. ``publish_all`` create: create + delete of a container whose image exposes a port, with
   ``publish_all`` (a host port drawn from ``PORT_RANGE``, claimed in the store, checked
   free on the host) vs the same create without it, interleaved, the side that goes first
   alternating (target: medians ≤ 1.05 x).
2. Idle stop lag, on the real server and engine: containers with ``idle_timeout``; the
   owner's check-in answers ``idle_stop_at`` (the due time); the lag is the time of the
   ``container.idle_stopped`` event (written after the stop is done) minus that due time
   (target: every one ≤ 1 s).
3. The scheduler with 10,000 timers, in-process (the real ``TimerScheduler`` over records
   held in memory, so only the scheduler is measured): the time to load them, and the
   process CPU over ``--idle`` seconds when none is due vs the same loop with no timers
   (target: no measurable difference); then 1,000 timers falling due within a second:
   the lag from each due time to its action (p50, max).

Run as root from the repository: ``.venv/bin/python bench/automation_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import base
from harness.base import IMAGE, log
from harness.context import Ctx, new_ctx
from harness.session import run_session
from harness.stats import ratio, summary
from harness.table import print_rows, yes

OUT = base.RESULTS / "automation-latest.json"
NETWORK = "dockyard-bench-auto"
EXPOSING = "dockyard-bench/exposing:latest"
TARGET_RATIO = 1.05
LAG_TARGET_S = 1.0
TIMERS = 10_000


# -- 1. publish_all ----------------------------------------------------------------------


def _exposing_image() -> None:
    """A local image that exposes a port (built from the test image; nothing pulled)."""
    dockerfile = f"FROM {IMAGE}\nEXPOSE 8080\n"
    done = subprocess.run(
        ["docker", "build", "-q", "-t", EXPOSING, "-"],
        input=dockerfile.encode(),
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker build: {done.stderr.decode(errors='replace')[-300:]}")


def _create_delete(client: httpx.Client, ctx: Ctx, publish_all: bool) -> float:
    body = {"image": EXPOSING, "command": base.COMMAND, "start": True}
    if publish_all:
        body["publish_all"] = True
    t0 = time.perf_counter()
    made = client.post("/containers", json=body, timeout=base.CREATE_TIMEOUT)
    if made.status_code != 201:
        raise RuntimeError(f"POST /containers: {made.status_code} {made.text[:300]}")
    cuid = made.json()["cuid"]
    ctx.api_cuids.add(cuid)
    if publish_all and not any(p.get("host") for p in made.json().get("ports", [])):
        raise RuntimeError(f"publish_all gave no host port: {made.json().get('ports')}")
    gone = client.delete(f"/containers/{cuid}", timeout=base.CREATE_TIMEOUT)
    if gone.status_code != 204:
        raise RuntimeError(f"DELETE: {gone.status_code} {gone.text[:300]}")
    return time.perf_counter() - t0


def publish_all(ctx: Ctx, b: dict[str, Any], iterations: int) -> None:
    _exposing_image()
    with_ports: list[float] = []
    without: list[float] = []
    with ctx.client() as client:
        _create_delete(client, ctx, True)  # warm-up, not counted
        for i in range(iterations):
            order = (True, False) if i % 2 == 0 else (False, True)
            for side in order:
                (with_ports if side else without).append(_create_delete(client, ctx, side))
    r = ratio(statistics.median(with_ports) * 1000, statistics.median(without) * 1000)
    b["publish_all"] = {
        "with_s": summary(with_ports),
        "without_s": summary(without),
        "ratio_of_medians": r,
        "target": f"<= {TARGET_RATIO}",
        "met": r <= TARGET_RATIO,
    }


# -- 2. idle stop lag --------------------------------------------------------------------


def _stopped_at(client: httpx.Client, cuid: str, deadline: float) -> datetime:
    while time.monotonic() < deadline:
        found = client.get("/events", params={"cuid": cuid, "type": "container.idle_stopped"})
        events = found.json()["events"]
        if events:
            return datetime.fromisoformat(events[0]["time"])
        time.sleep(0.1)
    raise RuntimeError(f"{cuid} was not stopped for idleness in time")


def idle_lag(ctx: Ctx, b: dict[str, Any], count: int) -> None:
    lags: list[float] = []
    with ctx.client() as client:
        due: dict[str, datetime] = {}
        for _ in range(count):
            body = {"image": IMAGE, "command": base.COMMAND, "start": True, "idle_timeout": 3}
            made = client.post("/containers", json=body, timeout=base.CREATE_TIMEOUT)
            if made.status_code != 201:
                raise RuntimeError(f"POST /containers: {made.status_code} {made.text[:300]}")
            cuid = made.json()["cuid"]
            ctx.api_cuids.add(cuid)
            checked = client.post(f"/containers/{cuid}/check-in")
            if checked.status_code != 200:
                raise RuntimeError(f"check-in: {checked.status_code} {checked.text[:300]}")
            due[cuid] = datetime.fromisoformat(checked.json()["idle_stop_at"])
        deadline = time.monotonic() + 60
        for cuid, when in due.items():
            lags.append((_stopped_at(client, cuid, deadline) - when).total_seconds())
            client.delete(f"/containers/{cuid}", timeout=base.CREATE_TIMEOUT)
    b["idle_stop_lag"] = {
        "count": count,
        "p50_s": round(statistics.median(lags), 3),
        "max_s": round(max(lags), 3),
        "min_s": round(min(lags), 3),
        "target": f"each <= {LAG_TARGET_S} s",
        "met": max(lags) <= LAG_TARGET_S and min(lags) >= 0,
    }


# -- 3. the scheduler in-process ---------------------------------------------------------


class _Records:
    """``TimedContainers`` over records in memory; an action notes when it ran."""

    def __init__(self, records: list[Any]) -> None:
        self.by_cuid = {r.cuid: r for r in records}
        self.acted: dict[str, float] = {}

    async def timed(self) -> list[Any]:
        return list(self.by_cuid.values())

    async def lookup(self, cuid: str) -> Any:
        return self.by_cuid.get(cuid)

    async def idle_stop(self, record: Any) -> None:
        self.acted[record.cuid] = time.time()

    async def expire(self, record: Any) -> None:
        self.acted[record.cuid] = time.time()


def _records(count: int, first_due: timedelta, spread: timedelta) -> list[Any]:
    from dockyard.domain.models import ContainerRecord, ContainerSpec, Status

    now = datetime.now(UTC)
    spec = ContainerSpec(image=IMAGE)
    out = []
    for n in range(count):
        offset = first_due + spread * (n / max(1, count - 1))
        record = ContainerRecord(
            cuid=f"c{n:08d}", owner="bench", spec=spec, status=Status.RUNNING, created_at=now
        )
        if n % 2:
            record.idle_timeout = offset.total_seconds()
        else:
            record.expires_at = now + offset
        out.append(record)
    return out


async def _idle_cpu(scheduler: Any, seconds: float) -> float:
    await scheduler.start()
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    used = time.process_time() - cpu0
    await scheduler.stop()
    return used


async def _scheduler(idle: float) -> dict[str, Any]:
    from dockyard.domain.automation.activity import NoActivity
    from dockyard.domain.automation.timers import TimerScheduler

    far = _Records(_records(TIMERS, timedelta(hours=1), timedelta(hours=9)))
    loaded = TimerScheduler(far, NoActivity())
    t0 = time.perf_counter()
    await loaded.load()
    load_ms = (time.perf_counter() - t0) * 1000
    loaded = TimerScheduler(far, NoActivity())
    busy = await _idle_cpu(loaded, idle)
    empty = await _idle_cpu(TimerScheduler(_Records([]), NoActivity()), idle)
    soon = _Records(_records(1000, timedelta(seconds=1), timedelta(seconds=1)))
    due = {
        r.cuid: (r.expires_at or r.created_at + timedelta(seconds=r.idle_timeout)).timestamp()
        for r in soon.by_cuid.values()
    }
    firing = TimerScheduler(soon, NoActivity())
    await firing.start()
    while len(soon.acted) < len(due):
        await asyncio.sleep(0.05)
    await firing.stop()
    lags = sorted((soon.acted[c] - due[c]) * 1000 for c in due)
    return {
        "timers": TIMERS,
        "load_ms": round(load_ms, 1),
        "idle_seconds": idle,
        "cpu_ms_with_timers": round(busy * 1000, 2),
        "cpu_ms_without": round(empty * 1000, 2),
        "met": busy - empty < 0.01 * idle,  # under 1 % of one core
        "firing_1000": {"p50_ms": round(lags[len(lags) // 2], 2), "max_ms": round(lags[-1], 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--idle-containers", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    ctx = new_ctx("dyauto-", network=NETWORK, keep_log=base.RESULTS / "auto-latest-server.log")

    def measure(ctx: Ctx, b: dict[str, Any]) -> None:
        log(f"1. publish_all create+delete vs without, {args.iterations} each, interleaved")
        publish_all(ctx, b, args.iterations)
        log(f"2. idle stop lag, {args.idle_containers} containers")
        idle_lag(ctx, b, args.idle_containers)
        log(f"3. the scheduler with {TIMERS} timers, in-process")
        b["scheduler"] = asyncio.run(_scheduler(args.idle))

    results, status = run_session(ctx, measure, out=OUT)
    subprocess.run(["docker", "rmi", EXPOSING], capture_output=True, timeout=60, check=False)
    b = results["benchmarks"]
    rows = []
    if "publish_all" in b:
        m = b["publish_all"]
        rows.append(
            [
                f"create+delete, publish_all vs not, median, n={args.iterations}",
                f"{m['with_s']['p50_ms']:.0f} ms",
                f"{m['without_s']['p50_ms']:.0f} ms",
                f"{m['ratio_of_medians']:.3f}",
                m["target"],
                yes(m["met"]),
            ]
        )
    if "idle_stop_lag" in b:
        m = b["idle_stop_lag"]
        rows.append(
            [
                f"idle stop: event time - due time, n={m['count']}",
                f"p50 {m['p50_s']} s, max {m['max_s']} s",
                "",
                "",
                m["target"],
                yes(m["met"]),
            ]
        )
    if "scheduler" in b:
        m = b["scheduler"]
        rows.append(
            [
                f"{m['timers']} timers: load; CPU in {m['idle_seconds']:.0f} s idle",
                f"{m['load_ms']} ms; {m['cpu_ms_with_timers']} ms",
                f"{m['cpu_ms_without']} ms",
                "",
                "< 1 % of a core more",
                yes(m["met"]),
            ]
        )
        f = m["firing_1000"]
        rows.append(
            [
                "1,000 timers due at once: lag",
                f"p50 {f['p50_ms']} ms, max {f['max_ms']} ms",
                *["", "", "", ""],
            ]
        )
    print_rows(["benchmark", "measured", "baseline", "ratio", "target", "met"], rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
