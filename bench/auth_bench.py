"""What authentication and the audit trail cost (issue 5). A script, not a test.

Run from the repository root, as root, with a Docker engine (the server checks it answers;
no container is made): ``.venv/bin/python bench/auth_bench.py``. It starts its own
``dockyard serve`` on 127.0.0.1:<free port> with its data in a temporary directory and
measures, in one run:

1. the p50 of ``GET /auth/whoami`` with Basic (cached after the first request), with a
   service key (``X-Service-Key``) and with a bearer token, each minus the p50 of the open
   ``GET /livez`` — what a credential adds to a request (target: at most 1 ms);
2. ``GET /audit`` (a page of 50) with 100,000 entries in the store: the newest page, a page
   filtered by user, and a page deep in the trail through a cursor (target: p99 at most
   20 ms).

The requests of (1) are interleaved, one keep-alive client each, after a warm-up. The
audit entries of (2) are appended with the service's own repository, in batches, while the
server runs. It prints a table; ``--json FILE`` also writes the figures. Everything it
makes (server, temporary directory, the network if it created it) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.context import Ctx, new_ctx
from harness.session import cleanup, prepare
from harness.stats import interleaved, summary

NETWORK = "dockyard-bench-auth"
TARGETS = {"auth_added_ms": 1.0, "audit_p99_ms": 20.0}


def log(msg: str) -> None:
    base.log(msg, "auth-bench")


def measure(
    calls: dict[str, Callable[[], httpx.Response]], count: int, warmup: int
) -> dict[str, Any]:
    """Interleaved after a warm-up, who goes first rotating; a summary per call."""
    times = interleaved(calls, count, warmup, rotate=True)
    return {name: summary(values) for name, values in times.items()}


def bench_auth(ctx: Ctx, count: int) -> dict[str, Any]:
    admin = ctx.client()
    key = admin.post("/servicekeys", json={"description": "bench"}).json()["key"]
    token = admin.post("/auth/token").json()["token"]
    clients = {
        "open /livez": httpx.Client(base_url=ctx.url, timeout=30),
        "Basic (cached)": admin,
        "service key": httpx.Client(base_url=ctx.url, headers={"X-Service-Key": key}, timeout=30),
        "bearer token": httpx.Client(
            base_url=ctx.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ),
    }
    calls: dict[str, Callable[[], httpx.Response]] = {
        name: (
            (lambda c=client: c.get("/livez"))
            if name.startswith("open")
            else (lambda c=client: c.get("/auth/whoami"))
        )
        for name, client in clients.items()
    }
    results = measure(calls, count, warmup=max(50, count // 10))
    open_p50 = results["open /livez"]["p50_ms"]
    for figures in results.values():
        figures["added_p50_ms"] = round(figures["p50_ms"] - open_p50, 3)
    for client in clients.values():
        client.close()
    return results


async def fill_audit(ctx: Ctx, entries: int) -> None:
    # The service's own repository and mapping, so the rows are exactly what it writes.
    from dockyard.domain.access.audit import AuditEntry
    from dockyard.store import Database, SqlAuditRepository

    db = Database(f"sqlite+aiosqlite:///{ctx.data_dir / 'dockyard.db'}")
    repo = SqlAuditRepository(db)
    start = datetime.now(UTC) - timedelta(days=30)
    actions = ["create_container", "start_container", "stop_container", "delete_container"]
    batch: list[AuditEntry] = []
    try:
        for i in range(entries):
            batch.append(
                AuditEntry(
                    at=start + timedelta(seconds=i * 25),
                    username=f"user{i % 50}",
                    credential="basic",
                    method="POST",
                    route="/containers/{cuid}/start",
                    action=actions[i % 4],
                    resource=f"c{i % 5000:08d}-0000-4000-8000-000000000000",
                    request_id=f"bench-{i}",
                    status=200,
                    source="127.0.0.1",
                )
            )
            if len(batch) == 5000:
                await repo.append(batch)
                batch = []
        if batch:
            await repo.append(batch)
    finally:
        await db.close()


def bench_audit(ctx: Ctx, entries: int, count: int) -> dict[str, Any]:
    log(f"appending {entries:,} audit entries")
    started = time.monotonic()
    asyncio.run(fill_audit(ctx, entries))
    log(f"appended in {time.monotonic() - started:.1f} s")
    admin = ctx.client()
    deep = admin.get("/audit", params={"limit": 500}).json()
    for _ in range(99):  # 50,000 entries down
        deep = admin.get("/audit", params={"limit": 500, "cursor": deep["next_cursor"]}).json()
    cursor = deep["next_cursor"]
    calls: dict[str, Callable[[], httpx.Response]] = {
        "newest page": lambda: admin.get("/audit", params={"limit": 50}),
        "user=user7": lambda: admin.get("/audit", params={"limit": 50, "user": "user7"}),
        "page 1,000 (cursor)": lambda: admin.get("/audit", params={"limit": 50, "cursor": cursor}),
        "action + since": lambda: admin.get(
            "/audit",
            params={
                "limit": 50,
                "action": "stop_container",
                "since": (datetime.now(UTC) - timedelta(days=20)).isoformat(),
            },
        ),
    }
    for name, call in calls.items():
        page = call().json()
        assert len(page["entries"]) == 50, (name, page)
    results = measure(calls, count, warmup=max(20, count // 10))
    admin.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per credential (1)")
    parser.add_argument("--audit-entries", type=int, default=100_000)
    parser.add_argument("--audit-requests", type=int, default=500, help="per query (2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    ctx = new_ctx("dyauth-", network=NETWORK, keep_log=None)
    try:
        prepare(ctx, {}, image=None)
        log(f"server on {ctx.url}")
        auth = bench_auth(ctx, args.requests)
        audit = bench_audit(ctx, args.audit_entries, args.audit_requests)
    finally:
        for problem in cleanup(ctx):
            log(f"cleanup problem: {problem}")

    print(f"\n1. authenticated request vs /livez, p50 (n = {args.requests:,} each, interleaved)")
    print(f"{'credential':<18} {'p50 ms':>8} {'p99 ms':>8} {'added p50 ms':>13}  target")
    for name, f in auth.items():
        target = "" if name.startswith("open") else f"<= {TARGETS['auth_added_ms']} ms"
        ok = (
            ""
            if not target
            else (" ok" if f["added_p50_ms"] <= TARGETS["auth_added_ms"] else " MISSED")
        )
        print(
            f"{name:<18} {f['p50_ms']:>8.3f} {f['p99_ms']:>8.3f} {f['added_p50_ms']:>13.3f}"
            f"  {target}{ok}"
        )
    print(
        f"\n2. GET /audit, 50 per page, {args.audit_entries:,} entries"
        f" (n = {args.audit_requests} each)"
    )
    print(f"{'query':<22} {'p50 ms':>8} {'p99 ms':>8}  target")
    for name, f in audit.items():
        ok = "ok" if f["p99_ms"] <= TARGETS["audit_p99_ms"] else "MISSED"
        print(f"{name:<22} {f['p50_ms']:>8.3f} {f['p99_ms']:>8.3f}  p99 <= 20 ms {ok}")
    if args.json:
        args.json.write_text(
            json.dumps({"auth": auth, "audit": audit, "targets": TARGETS}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
