"""5. Concurrent creates through the API vs as many raw ``compose up`` at once."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from harness.base import COMMAND, CONCURRENT_TIMEOUT, CREATE_TIMEOUT, IMAGE, log
from harness.containers import capture_template, make_raw_project, raw_compose_async
from harness.context import Ctx
from harness.serverlog import compose_durations, compose_overlap
from harness.stats import ratio, summary

TARGET_FAILURES = 0


async def _drop_all(ctx: Ctx, client: httpx.AsyncClient, cuids: list[str]) -> float:
    """Not counted: delete them all at once; the time it took."""

    async def drop(cuid: str) -> None:
        resp = await client.delete(f"/containers/{cuid}")
        if resp.status_code == 204:
            ctx.api_cuids.discard(cuid)

    t1 = time.perf_counter()
    async with asyncio.timeout(CONCURRENT_TIMEOUT):
        await asyncio.gather(*(drop(c) for c in cuids))
    return time.perf_counter() - t1


async def _api_burst(ctx: Ctx, count: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(
        base_url=ctx.url, auth=ctx.auth, timeout=CREATE_TIMEOUT + 60, limits=limits
    ) as client:
        await client.get("/auth/whoami")  # credentials cached before the burst

        async def one() -> tuple[int, str | None, str]:
            try:
                resp = await client.post(
                    "/containers", json={"image": IMAGE, "command": COMMAND, "start": True}
                )
            except httpx.HTTPError as exc:
                return 0, None, type(exc).__name__
            cuid = resp.json().get("cuid") if resp.status_code == 201 else None
            if cuid:
                ctx.api_cuids.add(cuid)
            return resp.status_code, cuid, "" if resp.status_code == 201 else resp.text[:300]

        t0 = time.perf_counter()
        async with asyncio.timeout(CONCURRENT_TIMEOUT):
            answers = await asyncio.gather(*(one() for _ in range(count)))
        wall = time.perf_counter() - t0
        cuids = [c for _, c, _ in answers if c]
        delete_wall = await _drop_all(ctx, client, cuids)
    statuses: dict[str, int] = {}
    for code, _, _ in answers:
        statuses[str(code)] = statuses.get(str(code), 0) + 1
    return {
        "wall_s": round(wall, 3),
        "non_201": count - statuses.get("201", 0),
        "statuses": statuses,
        "errors": sorted({e for code, _, e in answers if code != 201})[:5],
        "cuids": cuids,
        "delete_wall_s": round(delete_wall, 3),
    }


async def _raw_burst(ctx: Ctx, dirs: list[tuple[str, Path]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    async with asyncio.timeout(CONCURRENT_TIMEOUT):
        results = await asyncio.gather(*(raw_compose_async(ctx, n, d, "up") for n, d in dirs))
    wall = time.perf_counter() - t0
    failures = [err for _, err in results if err]
    per_call = [dt for dt, _ in results]

    # Not counted: bring them all down, a few at a time.
    gate = asyncio.Semaphore(8)

    async def down(name: str, pdir: Path) -> None:
        async with gate:
            await raw_compose_async(ctx, name, pdir, "down")

    t1 = time.perf_counter()
    async with asyncio.timeout(CONCURRENT_TIMEOUT):
        await asyncio.gather(*(down(n, d) for n, d in dirs))
    return {
        "wall_s": round(wall, 3),
        "failures": len(failures),
        "errors": sorted(set(failures))[:3],
        "per_call": summary(per_call),
        "delete_wall_s": round(time.perf_counter() - t1, 3),
    }


def bench_concurrent(ctx: Ctx, count: int) -> dict[str, Any]:
    log(f"5. {count} concurrent creates via the API vs {count} raw `compose up -d` in parallel")
    with ctx.client() as client:
        template, api_cuid, api_app_dir = capture_template(ctx, client)
    tag = ctx.root.name[-8:].lower()
    dirs = [
        (
            f"dybench-{tag}-par{i}",
            make_raw_project(ctx, template, api_cuid, api_app_dir, f"dybench-{tag}-par{i}"),
        )
        for i in range(count)
    ]
    api = asyncio.run(_api_burst(ctx, count))
    log(
        f"   API: {api['wall_s']} s, answers {api['statuses']}; deleted in {api['delete_wall_s']} s"
    )
    raw = asyncio.run(_raw_burst(ctx, dirs))
    log(f"   raw: {raw['wall_s']} s, {raw['failures']} failures; down in {raw['delete_wall_s']} s")
    for _, d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    burst = set(api.pop("cuids"))
    srv_up = compose_durations(ctx, "up", burst)
    return {
        "count": count,
        "server_max_concurrency": compose_overlap(ctx, "up", burst),
        "api": api,
        "raw": raw,
        "ratio_wall": ratio(api["wall_s"], raw["wall_s"]),
        "server_compose_up": summary([d / 1000 for d in srv_up]) if srv_up else None,
        "target": "0 non-201 answers",
        "met": api["non_201"] == TARGET_FAILURES,
    }
