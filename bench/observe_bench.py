"""What observation costs (issue 4): metrics and logs, against the raw Engine API.

Run from the repository root, as root, with a Docker engine and the local image
``dockyard-test/busybox:latest`` (``bash scripts/test-images.sh``); nothing is pulled:
``.venv/bin/python bench/observe_bench.py``. It starts its own ``dockyard serve`` on
127.0.0.1:<free port> with its data in a temporary directory (bench/harness) and
measures, in one run, each against the engine's own endpoint on its unix socket:

1. ``GET /containers/{cuid}/metrics`` (answered from the background collector) vs the
   engine's one-shot stats (``stats?stream=false&one-shot=true``), and for reference
   ``stats?stream=false`` (what ``docker stats --no-stream`` waits for); target: p50 of the
   API at most 10 ms. Also the first request for a container (sampled on the spot).
2. ``GET /containers/{cuid}/logs?tail=100`` vs the engine's ``logs?tail=100``.
3. The whole log of 100,000 lines (6.7 MB) vs the engine's; the bodies are compared byte
   for byte.

Requests are interleaved (API, engine, API, …) on keep-alive clients, after a warm-up. It
prints a table and writes ``bench/results/observe-latest.json``. Everything it makes
(server, containers, temporary directory, the network if it created it) is removed at
the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/harness: the server, clean-up and statistics helpers.
from harness import base
from harness.containers import api_create
from harness.context import Ctx, new_ctx
from harness.session import run_session
from harness.stats import interleaved, pct, ratio, summary, timed
from harness.table import print_rows, yes

OUT = base.RESULTS / "observe-latest.json"
# Its own network, so that a concurrent bench/run.py (which uses "dockyard-bench") and this
# script never remove each other's.
NETWORK = "dockyard-bench-observe"
LINES = 100_000
# ~67 bytes a line with the terminal's \r\n: 6.7 MB of log.
LOG_COMMAND = (
    "awk 'BEGIN { for (i = 1; i <= LINES; i++) "
    'printf "line %06d the quick brown fox jumps over the lazy dog 0123456789\\n", i }\''
    "; sleep 600"
).replace("LINES", str(LINES))
TARGETS = {"metrics_p50_ms": 10.0}
# The engine's logs: both streams, as the API sends them.
RAW_PARAMS = {"stdout": "1", "stderr": "1"}


def log(msg: str) -> None:
    base.log(msg, "observe-bench")


def create(ctx: Ctx, client: httpx.Client, command: str) -> str:
    return api_create(client, ctx, command=command)[0]


def engine_id(engine: httpx.Client, cuid: str) -> str:
    return str(engine.get(f"/containers/{cuid}-app-1/json").json()["Id"])


# -- 1. metrics ------------------------------------------------------------------------------


def bench_metrics(ctx: Ctx, requests: int, oneshots: int, full: int) -> dict[str, Any]:
    log(f"1. metrics: {requests} API requests vs {oneshots} one-shot and {full} full engine stats")
    with ctx.client() as client, ctx.engine() as engine:
        cuid = create(ctx, client, "while :; do sleep 0.05; done")
        cid = engine_id(engine, cuid)
        cold, first = timed(lambda: client.get(f"/containers/{cuid}/metrics"))
        api = interleaved({"api": lambda: client.get(f"/containers/{cuid}/metrics")}, requests, 50)
        ages = [
            client.get(f"/containers/{cuid}/metrics").json()["sample_age_ms"] for _ in range(50)
        ]
        oneshot = interleaved(
            {
                "oneshot": lambda: engine.get(
                    f"/containers/{cid}/stats", params={"stream": "false", "one-shot": "true"}
                )
            },
            oneshots,
            1,
        )
        full_stats = interleaved(
            {"full": lambda: engine.get(f"/containers/{cid}/stats", params={"stream": "false"})},
            full,
            0,
        )
        last = client.get(f"/containers/{cuid}/metrics").json()
    api_s = summary(api["api"])
    raw_s = summary(oneshot["oneshot"])
    return {
        "requests": requests,
        "api": api_s,
        "api_first_request_ms": round(cold * 1000, 2),
        "first_answer": {k: first.json()[k] for k in ("cpu_percent", "sample_age_ms", "source")},
        "sample_age_ms": {"p50": pct(ages, 50), "max": max(ages)},
        "engine_oneshot": raw_s,
        "engine_full": summary(full_stats["full"]),
        "ratio_p50": ratio(api_s["p50_ms"], raw_s["p50_ms"]),
        "last_answer": last,
        "target": f"p50 <= {TARGETS['metrics_p50_ms']} ms",
        "met": api_s["p50_ms"] <= TARGETS["metrics_p50_ms"],
    }


# -- 2 and 3. logs ---------------------------------------------------------------------------


def wait_for_lines(engine: httpx.Client, name: str, deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    wanted = f"line {LINES:06d}".encode()
    while time.monotonic() < deadline:
        resp = engine.get(f"/containers/{name}/logs", params={"stdout": "1", "tail": "2"})
        if wanted in resp.content:
            return
        time.sleep(0.2)
    raise base.BenchError(f"the log container did not print {LINES} lines in {deadline_s} s")


def _tail(
    client: httpx.Client, engine: httpx.Client, cuid: str, requests: int
) -> dict[str, list[float]]:
    name = f"{cuid}-app-1"
    return interleaved(
        {
            "api": lambda: client.get(f"/containers/{cuid}/logs", params={"tail": "100"}),
            "raw": lambda: engine.get(
                f"/containers/{name}/logs", params={**RAW_PARAMS, "tail": "100"}
            ),
        },
        requests,
        20,
    )


def _full_curl(ctx: Ctx, cuid: str, runs: int) -> dict[str, list[float]]:
    """The whole log through curl on both sides: a C client, so that the figure is the
    server's and the engine's, not the Python client's (httpx parsing the engine's 100,000
    one-line chunks takes longer than the engine takes to send them). The bodies are kept
    in ``full-api.log`` and ``full-raw.log``."""
    api_url = f"{ctx.url}/containers/{cuid}/logs"
    raw_url = f"http://docker/containers/{cuid}-app-1/logs?stdout=1&stderr=1"
    user = f"{ctx.auth[0]}:{ctx.auth[1]}"
    curl_api = ["curl", "-sf", "-u", user, api_url]
    curl_raw = ["curl", "-sf", "--unix-socket", base.docker_socket(), raw_url]
    times: dict[str, list[float]] = {"api": [], "raw": []}
    for n in range(runs + 1):  # the first round is a warm-up
        for key, argv in (("api", curl_api), ("raw", curl_raw)):
            dt = curl(ctx.root / f"full-{key}.log", argv)
            if n:
                times[key].append(dt)
    return times


def _full_httpx(
    client: httpx.Client, engine: httpx.Client, cuid: str, runs: int
) -> dict[str, list[float]]:
    """The same through httpx, for the record."""
    return interleaved(
        {
            "api": lambda: client.get(f"/containers/{cuid}/logs", timeout=120),
            "raw": lambda: engine.get(
                f"/containers/{cuid}-app-1/logs", params=RAW_PARAMS, timeout=120
            ),
        },
        max(runs // 2, 1),
        0,
    )


def _same_body(ctx: Ctx) -> bytes:
    """The whole log as the API sent it, once it is byte for byte the engine's."""
    api_body = (ctx.root / "full-api.log").read_bytes()
    raw_body = (ctx.root / "full-raw.log").read_bytes()
    if api_body != raw_body:
        raise base.BenchError(
            f"the API's log ({len(api_body)} bytes) differs from the engine's ({len(raw_body)})"
        )
    return api_body


def _compared(times: dict[str, list[float]]) -> dict[str, Any]:
    api, raw = summary(times["api"]), summary(times["raw"])
    return {"api": api, "raw": raw, "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"])}


def _full_figures(
    body: bytes, runs: int, curl_times: dict[str, list[float]], py: dict[str, list[float]]
) -> dict[str, Any]:
    full = _compared(curl_times)
    mb = len(body) / 1e6
    return {
        "runs": runs,
        "client": "curl",
        "lines": LINES,
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "identical": True,
        "api": full["api"],
        "raw": full["raw"],
        "api_mb_per_s": round(mb / (full["api"]["p50_ms"] / 1000), 1),
        "raw_mb_per_s": round(mb / (full["raw"]["p50_ms"] / 1000), 1),
        "ratio_p50": full["ratio_p50"],
        "httpx": _compared(py),
    }


def bench_logs(ctx: Ctx, requests: int, full_runs: int) -> dict[str, Any]:
    log(f"2/3. logs: tail=100 x {requests}, all {LINES:,} lines x {full_runs}, vs the engine")
    with ctx.client() as client, ctx.engine() as engine:
        cuid = create(ctx, client, LOG_COMMAND)
        wait_for_lines(engine, f"{cuid}-app-1")
        tail = _tail(client, engine, cuid, requests)
        curl_times = _full_curl(ctx, cuid, full_runs)
        py = _full_httpx(client, engine, cuid, full_runs)
    return {
        "tail100": {"requests": requests, **_compared(tail)},
        "full": _full_figures(_same_body(ctx), full_runs, curl_times, py),
    }


def curl(dest: Path, argv: list[str]) -> float:
    """Fetch into ``dest``; curl's own total time (the process start is not counted)."""
    out = base.run_cmd([*argv, "-o", str(dest), "-w", "%{time_total}"], timeout=300)
    if out.returncode != 0:
        raise base.BenchError(f"curl {argv[-1]}: exit {out.returncode} {out.stderr[:300]}")
    return float(out.stdout.strip())


# -- report -------------------------------------------------------------------------------------


HEADER = ("benchmark", "Dockyard", "engine", "ratio (p50)", "target", "met")


def _metrics_row(r: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"1. GET …/metrics p50 / p99, n={r['requests']}",
        f"{r['api']['p50_ms']:.2f} / {r['api']['p99_ms']:.2f} ms",
        f"{r['engine_oneshot']['p50_ms']:.0f} / {r['engine_oneshot']['p99_ms']:.0f} ms",
        f"{r['ratio_p50']:.4f}",
        r["target"],
        yes(r["met"]),
    )


def _logs_rows(t: dict[str, Any], f: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            f"2. logs tail=100 p50 / p99, n={t['requests']}",
            f"{t['api']['p50_ms']:.2f} / {t['api']['p99_ms']:.2f} ms",
            f"{t['raw']['p50_ms']:.2f} / {t['raw']['p99_ms']:.2f} ms",
            f"{t['ratio_p50']:.2f}",
            "-",
            "-",
        ),
        (
            f"3. logs, {f['lines']:,} lines ({f['bytes'] / 1e6:.1f} MB), curl, p50, n={f['runs']}",
            f"{f['api']['p50_ms']:.0f} ms ({f['api_mb_per_s']} MB/s)",
            f"{f['raw']['p50_ms']:.0f} ms ({f['raw_mb_per_s']} MB/s)",
            f"{f['ratio_p50']:.2f}",
            "-",
            "-",
        ),
    ]


def _notes(b: dict[str, Any]) -> list[str]:
    notes = []
    if "metrics" in b:
        r = b["metrics"]
        notes.append(
            f"1: the first request for a container took {r['api_first_request_ms']} ms "
            f"(sampled on the spot, CPU % over 0.1 s); sample age p50 "
            f"{r['sample_age_ms']['p50']} ms, max {r['sample_age_ms']['max']} ms; engine "
            f"stats?stream=false p50 {r['engine_full']['p50_ms']:.0f} ms"
        )
    if "logs" in b:
        h = b["logs"]["full"]["httpx"]
        notes.append(
            f"3: the same read through httpx: {h['api']['p50_ms']:.0f} ms vs "
            f"{h['raw']['p50_ms']:.0f} ms (ratio {h['ratio_p50']:.2f}); bodies identical"
        )
    return notes


def print_table(results: dict[str, Any]) -> None:
    b = results["benchmarks"]
    rows = [_metrics_row(b["metrics"])] if "metrics" in b else []
    if "logs" in b:
        rows += _logs_rows(b["logs"]["tail100"], b["logs"]["full"])
    print_rows(HEADER, rows)
    for note in _notes(b):
        print(f"  * {note}")
    m = results.get("machine", {})
    print(
        f"\n{m.get('cpus')} CPUs, Docker {m.get('docker_server_version')} "
        f"({m.get('docker_cgroup')}); {results['duration_s']:.0f} s; figures in {OUT}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="metrics and tail requests")
    parser.add_argument("--oneshots", type=int, default=20, help="engine one-shot stats calls")
    parser.add_argument("--full-stats", type=int, default=3, help="engine stream=false calls")
    parser.add_argument("--full-logs", type=int, default=10, help="whole-log reads each side")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("observe-bench: run as root (the server drives Docker)", file=sys.stderr)
        return 2

    def measure(ctx: Ctx, b: dict[str, Any]) -> None:
        b["metrics"] = bench_metrics(ctx, args.requests, args.oneshots, args.full_stats)
        b["logs"] = bench_logs(ctx, args.requests, args.full_logs)

    ctx = new_ctx("dyobs-", network=NETWORK, keep_log=base.RESULTS / "observe-latest-server.log")
    results, status = run_session(ctx, measure, out=OUT)
    if results["benchmarks"]:
        print_table(results)
    return status


if __name__ == "__main__":
    sys.exit(main())
