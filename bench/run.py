"""Dockyard benchmarks against raw Compose and the raw Engine API (``make bench``).

Run with ``.venv/bin/python bench/run.py`` from the repository root, as root, with a Docker
engine and the local image ``dockyard-test/busybox:latest`` (``bash scripts/test-images.sh``).
Nothing is pulled. One run starts its own ``dockyard serve`` on 127.0.0.1:<free port> with its
data in a temporary directory, measures five things, each against a raw baseline measured in
the same run, prints a table and writes the figures to ``bench/results/latest.json`` (and the
server's log to ``bench/results/latest-server.log``):

1. create+start+delete through the API vs the same compose file through the Compose binary
2. ``GET /containers/{cuid}`` vs the Engine API's inspect of the same container
3. ``GET /containers?limit=50`` with 1,000 and 10,000 records vs the Engine API's list
4. an authenticated request (``/auth/whoami``) vs an open one (``/livez``)
5. 50 concurrent creates vs 50 concurrent raw ``compose up``

Everything the run creates (containers, Compose projects, the network if it made it, the
temporary directory, the server) is removed at the end, also after a failure or SIGTERM.
The set-up is in ``bench/harness/``, each measured area in ``bench/areas/``, the table in
``bench/report.py``. See docs/benchmarks.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from areas.auth import bench_auth
from areas.concurrent import bench_concurrent
from areas.create_delete import bench_create_delete
from areas.get import bench_get
from areas.listing import bench_list
from harness.base import IMAGE, RESULTS
from harness.containers import api_create, api_delete
from harness.context import Ctx, new_ctx
from harness.session import run_session
from report import print_table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=10, help="benchmark 1 (default 10)")
    parser.add_argument(
        "--requests", type=int, default=500, help="benchmarks 2 and 3 (default 500)"
    )
    parser.add_argument(
        "--auth-requests", type=int, default=1000, help="benchmark 4 (default 1000)"
    )
    parser.add_argument("--concurrent", type=int, default=50, help="benchmark 5 (default 50)")
    parser.add_argument("--sizes", default="1000,10000", help="benchmark 3 store sizes")
    parser.add_argument("--only", default="", help="comma list of benchmarks, e.g. 1,5")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args()


def measure(ctx: Ctx, b: dict[str, Any], args: argparse.Namespace) -> None:
    """The benchmarks chosen with --only, in order; each fills its entry of ``b``."""
    only = {int(x) for x in args.only.split(",")} if args.only else {1, 2, 3, 4, 5}
    if 1 in only:
        b["create_delete"] = bench_create_delete(ctx, args.iterations)
    if only & {2, 3}:
        with ctx.client() as client:  # one running container for 2 (and 3's engine list)
            cuid, _ = api_create(client, ctx)
        if 2 in only:
            b["get"] = bench_get(ctx, cuid, args.requests, warmup=50)
        if 3 in only:
            sizes = [int(s) for s in args.sizes.split(",")]
            b["list"] = bench_list(ctx, sizes, args.requests, warmup=50)
        with ctx.client() as client:
            api_delete(client, ctx, cuid)
    if 4 in only:
        b["auth"] = bench_auth(ctx, args.auth_requests, warmup=100)
    if 5 in only:
        b["concurrent"] = bench_concurrent(ctx, args.concurrent)


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (the server chowns folders and drives Docker)", file=sys.stderr)
        return 2
    results, status = run_session(
        new_ctx("dybench-"),
        lambda ctx, b: measure(ctx, b, args),
        out=RESULTS / "latest.json",
        results={"image": IMAGE},
    )
    if "machine" in results and results["benchmarks"]:
        print_table(results)
    if (
        status == 0
        and args.strict
        and not all(b.get("met") for b in results["benchmarks"].values())
    ):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
