"""3. ``GET /containers?limit=50`` with 1,000 and 10,000 records vs the Engine API's list.

The records are written straight into the server's SQLite store (exited containers of the
bench user, no Docker objects), the way the repository writes them."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.base import COMMAND, IMAGE, USER, BenchError, log
from harness.context import Ctx
from harness.serverlog import server_side
from harness.stats import Tags, ratio, summary, timed_loop

TARGET_P99_MS = 20.0
PAGE = 50


def _row_mapping() -> Callable[[Any], dict[str, Any]]:
    """The repository's own mapping, so that the rows are what insert() would write; a copy
    of it should the repository ever drop that helper."""
    with contextlib.suppress(ImportError):
        from dockyard.store.containers import _row_values

        return _row_values

    def row(record: Any) -> dict[str, Any]:
        spec = record.spec
        return {
            "cuid": record.cuid,
            "owner": record.owner,
            "image": spec.image,
            "name": spec.name,
            "tags_text": "," + ",".join(spec.tags) + ",",
            "status": record.status.value,
            "spec": spec.model_dump(mode="json"),
            "engine": record.engine,
            "exit_code": record.exit_code,
            "error": None,
            "created_at": record.created_at,
            "started_at": None,
            "finished_at": None,
        }

    return row


async def _seed(db_path: Path, count: int) -> float:
    from sqlalchemy import func, insert, select

    from dockyard.domain.models import ContainerRecord, ContainerSpec, Status, new_cuid
    from dockyard.store import Database
    from dockyard.store.tables import containers

    spec = ContainerSpec(image=IMAGE, command=COMMAND, tags=["bench"])
    row = _row_mapping()
    rows = [
        row(
            ContainerRecord(
                cuid=new_cuid(), owner=USER, spec=spec, status=Status.EXITED, exit_code=0
            )
        )
        for _ in range(count)
    ]
    database = Database(f"sqlite+aiosqlite:///{db_path}")
    try:
        t0 = time.perf_counter()
        async with database.engine.begin() as conn:
            await conn.execute(insert(containers), rows)  # one transaction, executemany
        elapsed = time.perf_counter() - t0
        async with database.engine.connect() as conn:
            total = int(
                (await conn.execute(select(func.count()).select_from(containers))).scalar_one()
            )
    finally:
        await database.close()
    log(f"   seeded {count} records in {elapsed * 1000:.0f} ms; {total} in the store")
    return elapsed


def store_count(ctx: Ctx) -> int:
    with contextlib.closing(sqlite3.connect(ctx.data_dir / "dockyard.db", timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM containers").fetchone()[0])


def bench_list(ctx: Ctx, sizes: list[int], requests: int, warmup: int) -> dict[str, Any]:
    log(f"3. GET /containers?limit=50 with {sizes} records: {requests} after {warmup} warm-up")
    db_path = ctx.data_dir / "dockyard.db"
    out: dict[str, Any] = {"requests": requests, "sizes": {}}
    tag = Tags("3")
    with ctx.client() as client, ctx.engine() as engine:
        raw_call = lambda: engine.get("/containers/json", params={"all": "1", "limit": PAGE})  # noqa: E731
        api_call = lambda: client.get("/containers", params={"limit": PAGE}, headers=tag("list"))  # noqa: E731
        for size in sizes:
            have = store_count(ctx)
            if size > have:
                asyncio.run(_seed(db_path, size - have))
            total = store_count(ctx)
            tag.phase = "warm"
            timed_loop(warmup, api_call)
            timed_loop(warmup, raw_call)
            page = api_call().json()
            if len(page["containers"]) != PAGE or not page.get("next_cursor"):
                raise BenchError(f"list returned {len(page['containers'])} records, no full page")
            tag.phase = str(size)
            api = summary(timed_loop(requests, api_call))
            raw = summary(timed_loop(requests, raw_call))
            out["sizes"][str(size)] = {
                "records": total,
                "api": api,
                "raw": raw,
                "server_side": server_side(ctx, tag.rid("list"), requests),
                "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"]),
                "ratio_p99": ratio(api["p99_ms"], raw["p99_ms"]),
            }
        out["engine_containers"] = len(engine.get("/containers/json", params={"all": "1"}).json())
    biggest = out["sizes"][str(max(sizes))]
    out["target"] = f"p99 <= {TARGET_P99_MS} ms at {max(sizes)} records"
    out["met"] = biggest["api"]["p99_ms"] <= TARGET_P99_MS
    return out
