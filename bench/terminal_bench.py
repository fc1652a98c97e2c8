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
   least 0.5 x raw. The same ``cat`` also goes through ``/ws`` in binary mode (subprotocol
   ``dockyard.v1.binary``, SPEC §5, issue 14: one channel byte + the raw bytes per frame,
   no compression, as the SDK opens it). Target: binary at least 0.8 x raw.

The WebSocket client is the ``websockets`` package's asyncio client with its defaults
(it offers permessage-deflate, as browsers do; the table says whether the server accepted
it); each figure is also taken with compression off. To tell what a shortfall is made of,
the run also records the server's, dockerd's and the client's CPU seconds per transfer and
times, in this process, each step of a chunk's way: the server's framing (UTF-8 check,
base64), ``json.dumps`` and WebSocket send (with and without deflate), the client's
WebSocket parsing and JSON + base64 decoding.

It prints a table and writes ``bench/results/terminal.json``. Everything it makes (server,
container, temporary directory, the network if it created it) is removed at the end, also
after a failure or Ctrl-C. The two sides are in ``bench/areas/terminal_sides.py``, each
measured area in ``bench/areas/terminal_*.py``, the table in ``bench/terminal_report.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/harness: the server, clean-up and statistics helpers; bench/areas: what is measured.
from areas.terminal_costs import breakdown, encoding_costs
from areas.terminal_keystrokes import MAX_KEYS, bench_keys
from areas.terminal_sides import MIB, TOTAL_TIMEOUT, BenchError, log
from areas.terminal_throughput import File, bench_throughput
from harness import base
from harness.containers import api_create
from harness.context import Ctx, new_ctx
from harness.session import run_session
from terminal_report import print_table

OUT = base.RESULTS / "terminal.json"
# Its own network, so that a concurrent bench/run.py or observe_bench.py and this script
# never remove each other's.
NETWORK = "dockyard-bench-terminal"


def make_files(app: Path, size: int) -> dict[str, File]:
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


async def measure_streams(
    ctx: Ctx, cuid: str, files: dict[str, File], args: argparse.Namespace
) -> dict[str, Any]:
    """1 and 2: the keystrokes and the transfers, against raw execs through aiodocker."""
    import aiodocker

    out: dict[str, Any] = {}
    async with asyncio.timeout(TOTAL_TIMEOUT):
        docker = aiodocker.Docker(url=f"unix://{base.docker_socket()}")
        try:
            out["keystroke"] = await bench_keys(ctx, docker, cuid, args.keys, args.warmup)
            out["throughput"] = await bench_throughput(ctx, docker, cuid, files, args.runs)
        finally:
            await docker.close()
    return out


def measure(ctx: Ctx, cuid: str, args: argparse.Namespace) -> dict[str, Any]:
    app = ctx.data_dir / "containers" / cuid / "app"
    if not app.is_dir():
        raise BenchError(f"{app} is not the container's /app folder")
    size = args.size_mib * MIB
    log(f"writing two {args.size_mib} MiB files into {app}")
    files = make_files(app, size)
    out = asyncio.run(measure_streams(ctx, cuid, files, args))
    # 3: the chunk size the engine sent in, on a sample of each file.
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
            cuid = api_create(client, ctx, command="sleep 3600")[0]
        b.update(measure(ctx, cuid, args))

    # bench/run.py's own latest-server.log stays as it is.
    results, status = run_session(new_ctx("dyterm-", network=NETWORK, keep_log=None), run, out=OUT)
    if results["complete"] and results["benchmarks"]:
        print_table(results, OUT)
    return status


if __name__ == "__main__":
    sys.exit(main())
