"""What the ``dockyard`` command line costs (issue 14). A script, not a test.

Run from the repository root, as root, with a Docker engine and the test image:
``.venv/bin/python bench/cli_bench.py [--runs N]``. It starts its own ``dockyard serve``
(harness), logs the CLI in with a config file in the run's temporary folder, and measures
the median wall time of:

1. ``dockyard run --rm IMAGE echo hi`` against ``docker run --rm IMAGE echo hi``
   (target: at most 1.5x; the CLI's run includes Compose's create, start and down);
2. the start-up of ``dockyard --help`` and ``dockyard ps`` (target: at most 200 ms each;
   ``ps`` includes its request, answered with an empty list).

Runs are interleaved (one of each in turn). Everything it made is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import base
from harness.context import new_ctx
from harness.session import cleanup, prepare

NETWORK = "dockyard-bench-cli"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
TARGETS = {"run_ratio": 1.5, "startup_ms": 200.0}


def log(msg: str) -> None:
    base.log(msg, "cli-bench")


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv}: {done.returncode} {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    ctx = new_ctx("dycli-", network=NETWORK, keep_log=None)
    cases = {
        "dockyard run --rm": [DOCKYARD, "run", "--rm", base.IMAGE, "echo", "hi"],
        "docker run --rm": ["docker", "run", "--rm", base.IMAGE, "echo", "hi"],
        "dockyard --help": [DOCKYARD, "--help"],
        "dockyard ps": [DOCKYARD, "ps"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    try:
        prepare(ctx, {}, image=base.IMAGE)
        env = {**os.environ, "DOCKYARD_CONFIG": str(ctx.data_dir.parent / "cli.json")}
        user, password = ctx.auth
        login = [DOCKYARD, "login", ctx.url, "-u", user, "--password-stdin"]
        subprocess.run(login, env=env, input=password.encode(), check=True, capture_output=True)
        for argv in cases.values():  # warm-up: page cache, image, first Compose call
            timed(argv, env)
        for i in range(args.runs):
            log(f"round {i + 1}/{args.runs}")
            for name, argv in cases.items():
                times[name].append(timed(argv, env))
    finally:
        for problem in cleanup(ctx):
            log(f"cleanup problem: {problem}")
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    ratio = med["dockyard run --rm"] / med["docker run --rm"]
    print(f"\nmedian wall time, n = {args.runs} each (interleaved)")
    for name, ms in med.items():
        print(f"{name:<20} {ms:>9.1f} ms")
    ok = "ok" if ratio <= TARGETS["run_ratio"] else "MISSED"
    print(f"run ratio {ratio:.2f}x (target <= {TARGETS['run_ratio']}x) {ok}")
    for name in ("dockyard --help", "dockyard ps"):
        ok = "ok" if med[name] <= TARGETS["startup_ms"] else "MISSED"
        print(f"{name} start-up {med[name]:.0f} ms (target <= 200 ms) {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
