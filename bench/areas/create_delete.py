"""1. create+start+delete through the API vs the same compose file through Compose."""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness.base import log
from harness.containers import (
    api_create,
    api_delete,
    capture_template,
    make_raw_project,
    raw_compose,
)
from harness.context import Ctx
from harness.server import server_cpu
from harness.serverlog import compose_durations, request_phases, server_side
from harness.stats import ratio, summary

TARGET_RATIO = 1.05


@dataclass
class Samples:
    api_totals: list[float] = field(default_factory=list)
    api_creates: list[float] = field(default_factory=list)
    api_deletes: list[float] = field(default_factory=list)
    raw_totals: list[float] = field(default_factory=list)
    raw_ups: list[float] = field(default_factory=list)
    raw_downs: list[float] = field(default_factory=list)
    measured: set[str] = field(default_factory=set)
    server_own_cpu: list[float] = field(default_factory=list)
    compose_cpu: list[float] = field(default_factory=list)


def _measure(ctx: Ctx, client: httpx.Client, iterations: int) -> Samples:
    """The API and raw Compose in turn, the side that goes first alternating."""
    s = Samples()
    # The warm-up (not counted) also yields the compose file the raw side replays.
    template, cuid, api_app_dir = capture_template(ctx, client)

    def raw_iteration(i: int, count: bool) -> None:
        name = f"dybench-{ctx.root.name[-8:].lower()}-seq{i}"
        pdir = make_raw_project(ctx, template, cuid, api_app_dir, name)
        up = raw_compose(ctx, name, pdir, "up")
        down = raw_compose(ctx, name, pdir, "down")
        shutil.rmtree(pdir, ignore_errors=True)
        if count:
            s.raw_ups.append(up)
            s.raw_downs.append(down)
            s.raw_totals.append(up + down)

    def api_iteration() -> None:
        cpu0 = server_cpu(ctx)
        c, create = api_create(client, ctx, "bench1-create")
        delete = api_delete(client, ctx, c, "bench1-delete")
        cpu1 = server_cpu(ctx)
        s.server_own_cpu.append(cpu1[0] - cpu0[0])
        s.compose_cpu.append(cpu1[1] - cpu0[1])
        s.measured.add(c)
        s.api_creates.append(create)
        s.api_deletes.append(delete)
        s.api_totals.append(create + delete)

    raw_iteration(0, count=False)  # warm-up, not counted
    for i in range(iterations):
        if i % 2 == 0:
            api_iteration()
            raw_iteration(i + 1, True)
        else:
            raw_iteration(i + 1, True)
            api_iteration()
    return s


def _where_the_time_goes(ctx: Ctx, s: Samples, result: dict[str, Any]) -> None:
    """The server's own view: CPU, time inside the app, around its Compose calls."""
    srv_up = compose_durations(ctx, "up", s.measured)
    srv_down = compose_durations(ctx, "down", s.measured)
    result["server_compose_up"] = summary([d / 1000 for d in srv_up]) if srv_up else None
    result["server_compose_down"] = summary([d / 1000 for d in srv_down]) if srv_down else None
    result["server_cpu_per_iteration_ms"] = round(statistics.fmean(s.server_own_cpu) * 1000, 1)
    result["server_compose_cpu_per_iteration_ms"] = round(statistics.fmean(s.compose_cpu) * 1000, 1)
    iterations = result["iterations"]
    result["server_create"] = server_side(ctx, "bench1-create", iterations)
    result["server_delete"] = server_side(ctx, "bench1-delete", iterations)
    result["create_phases"] = request_phases(ctx, "bench1-create", "up", s.measured)
    result["delete_phases"] = request_phases(ctx, "bench1-delete", "down", s.measured)
    if srv_up and srv_down:
        compose_ms = statistics.fmean(srv_up) + statistics.fmean(srv_down)
        api_mean = result["api"]["mean_ms"]
        result["api_outside_compose_mean_ms"] = round(api_mean - compose_ms, 1)
        if result["server_create"] and result["server_delete"]:
            inside = result["server_create"]["mean_ms"] + result["server_delete"]["mean_ms"]
            # Dockyard's own work inside the app (store, files, engine reads, logging) ...
            result["server_outside_compose_mean_ms"] = round(inside - compose_ms, 1)
            # ... and what HTTP, uvicorn and the client add around it.
            result["http_and_client_mean_ms"] = round(api_mean - inside, 1)


def bench_create_delete(ctx: Ctx, iterations: int) -> dict[str, Any]:
    log(f"1. create+start+delete: {iterations} API vs {iterations} raw Compose, interleaved")
    with ctx.client() as client:
        s = _measure(ctx, client, iterations)
    api = summary(s.api_totals)
    raw = summary(s.raw_totals)
    result: dict[str, Any] = {
        "iterations": iterations,
        "samples_ms": {
            "api": [round(v * 1000, 1) for v in s.api_totals],
            "raw": [round(v * 1000, 1) for v in s.raw_totals],
        },
        "api": api,
        "api_create": summary(s.api_creates),
        "api_delete": summary(s.api_deletes),
        "raw": raw,
        "raw_up": summary(s.raw_ups),
        "raw_down": summary(s.raw_downs),
        "ratio_mean": ratio(api["mean_ms"], raw["mean_ms"]),
        "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"]),
    }
    _where_the_time_goes(ctx, s, result)
    result["target"] = f"ratio <= {TARGET_RATIO}"
    result["met"] = result["ratio_mean"] <= TARGET_RATIO
    return result
