"""Placement and the cluster's page (issue 12). A script, not a test.

Run from the repository root, as root, with a Docker engine (the server checks that it
answers; no container is made): ``.venv/bin/python bench/engines_bench.py``. In one run:

1. a placement decision among 100 engines, in process: simulated capacity records
   (declared capacity, labels, healthy, what is reserved on each) and the choice
   (``choose``) - by constraints that 1 engine in 3 matches, by none, and a refusal
   (409, every engine's reason); target p50 <= 1 ms; and the whole of what a create does
   in process, the sums of 1,000 container records (10 per engine; ``rooms_of``, the
   ones ``/cluster/info`` shows) and then the decision (reported beside it);
2. ``GET /cluster/info`` on the real server with 10 engines registered (unix sockets that
   do not exist: they read unreachable, the registry keeps them); target p50 <= 10 ms
   over 200 requests, after a warm-up.

It prints a table; ``--json FILE`` also writes the figures. The server, its temporary
folder and the network (if it made it) are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.context import Ctx, new_ctx
from harness.session import cleanup, prepare
from harness.stats import summary, timed_loop
from harness.table import print_rows, yes

NETWORK = "dockyard-bench-engines"
TARGETS = {"placement_p50_ms": 1.0, "cluster_info_p50_ms": 10.0}
GIB = 1024**3


def log(msg: str) -> None:
    base.log(msg, "engines-bench")


def _simulated(engines: int, per_engine: int) -> tuple[list[Any], list[Any]]:
    """``engines`` healthy views (3 regions, capacities 4..32 CPUs) and their records."""
    from dockyard.domain.engines.cluster import ContainerUse
    from dockyard.domain.engines.models import EngineFacts, EngineHealth, EngineKind, EngineRecord
    from dockyard.domain.engines.service import EngineView

    now = datetime.now(UTC)
    views, uses = [], []
    for i in range(engines):
        engine_id = f"eng{i:03d}"
        labels = {"region": ("eu", "us", "ap")[i % 3], "disk": ("ssd", "hdd")[i % 2]}
        cpus = float(4 * (1 + i % 8))
        record = EngineRecord(
            engine_id, f"unix:///run/{engine_id}.sock", EngineKind.LOCAL, labels,
            cpus, int(cpus) * 2 * GIB, None, False, now, now,
        )  # fmt: skip
        facts = EngineFacts(engine_id, "27.0", "1.47", "linux", int(cpus), 64 * GIB, 0, 0, 0, 9)
        views.append(EngineView(record, EngineHealth(True, facts, now, None, now)))
        for k in range(per_engine):
            status = ("running", "exited", "created", "failed")[k % 4]
            cpu = None if k % 5 == 0 else 0.25 * (1 + k % 3)  # some take the defaults
            memory = None if k % 5 == 0 else f"{128 * (1 + k % 4)}m"
            uses.append(ContainerUse(engine_id, status, cpu, memory, replicas=1 + k % 2))
    return views, uses


def bench_placement(count: int) -> dict[str, Any]:
    from dockyard.domain.engines.placement import Need, PlacementRequest, choose, rooms_of
    from dockyard.domain.models import Resources
    from dockyard.errors import ConflictError

    views, uses = _simulated(100, 10)
    defaults = Resources(cpus=1.0, memory="512m")
    rooms = rooms_of(views, uses, defaults)  # 100 capacity records, reserved summed
    need = Need.of(Resources(cpus=0.5, memory="256m"))
    eu = PlacementRequest(constraints={"region": "eu"})
    cases: dict[str, Callable[[], str]] = {
        "decision, constraints region=eu": lambda: choose(rooms, eu, need),
        "decision, no constraints": lambda: choose(rooms, PlacementRequest(), need),
        "decision, refused (409, 100 reasons)": lambda: choose(
            rooms, PlacementRequest(), Need(1000.0, 0)
        ),
        "sums of 1,000 records + decision": lambda: choose(
            rooms_of(views, uses, defaults), eu, need
        ),
    }
    results: dict[str, Any] = {}
    for name, call in cases.items():

        def decide(call: Callable[[], str] = call) -> str:
            try:
                return call()
            except ConflictError as exc:
                return str(exc.code)

        times: list[float] = []
        for n in range(count + count // 10):
            t0 = time.perf_counter()
            decide()
            if n >= count // 10:  # after a warm-up
                times.append(time.perf_counter() - t0)
        results[name] = {**summary(times), "chosen": decide()}
    return results


def bench_cluster_info(ctx: Ctx, engines: int, count: int) -> dict[str, Any]:
    admin = ctx.client()
    try:
        for i in range(engines):
            body = {
                "id": f"bench{i:02d}",
                "addr": f"unix:///run/dockyard-bench-none-{i:02d}.sock",
                "labels": {"region": ("eu", "us")[i % 2]},
                "cpus": 8,
                "memory": 16 * GIB,
            }
            resp = admin.post("/engines", json=body)
            if resp.status_code != 201 or resp.json()["status"] != "unreachable":
                raise base.BenchError(f"POST /engines: {resp.status_code} {resp.text[:300]}")
        page = admin.get("/cluster/info").json()
        shown = len(page["engines"])
        call: Callable[[], Any] = lambda: admin.get("/cluster/info")  # noqa: E731
        timed_loop(max(20, count // 10), call)  # warm-up
        return {**summary(timed_loop(count, call)), "engines_shown": shown}
    finally:
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=2000, help="per case (1)")
    parser.add_argument("--requests", type=int, default=200, help="GET /cluster/info (2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    ctx = new_ctx("dyengines-", network=NETWORK, keep_log=None)
    placement = bench_placement(args.decisions)
    try:
        prepare(ctx, {}, image=None)
        log(f"server on {ctx.url}")
        cluster = bench_cluster_info(ctx, 10, args.requests)
    finally:
        for problem in cleanup(ctx):
            log(f"cleanup problem: {problem}")

    limit = TARGETS["placement_p50_ms"]
    rows = [
        [name, f"{f['p50_ms']:.3f}", f"{f['p99_ms']:.3f}", f["chosen"],
         f"<= {limit:g} ms" if name.startswith("decision") else "(reported)",
         yes(f["p50_ms"] <= limit) if name.startswith("decision") else ""]
        for name, f in placement.items()
    ]  # fmt: skip
    print(f"\n1. placement among 100 engines (n = {args.decisions:,} each, in process)")
    print_rows(["case", "p50 ms", "p99 ms", "answer", "target p50", "met"], rows)
    limit = TARGETS["cluster_info_p50_ms"]
    print(f"\n2. GET /cluster/info, {cluster['engines_shown']} engines (n = {args.requests})")
    print_rows(
        ["request", "p50 ms", "p99 ms", "target p50", "met"],
        [["GET /cluster/info", f"{cluster['p50_ms']:.3f}", f"{cluster['p99_ms']:.3f}",
          f"<= {limit:g} ms", yes(cluster["p50_ms"] <= limit)]],
    )  # fmt: skip
    if args.json:
        figures = {"placement": placement, "cluster_info": cluster, "targets": TARGETS}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
