"""One benchmark run from start to clean-up: the server started, the areas measured, and
everything the run made removed again, also after a failure, Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness.base import CLEANUP_BUDGET, IMAGE, BenchError, log, run_cmd
from harness.containers import raw_compose
from harness.context import Ctx
from harness.machine import cpu_times, cpu_usage, machine
from harness.server import start_server, stop_server
from harness.serverlog import server_events

# -- clean-up ---------------------------------------------------------------------------


def our_containers(ctx: Ctx) -> list[str]:
    """Ids of containers of Compose projects whose folder is inside this run's temp dir."""
    prefix = str(ctx.root) + os.sep
    filters = json.dumps({"label": ["com.docker.compose.project.working_dir"]})
    with ctx.engine() as engine:
        rows = engine.get("/containers/json", params={"all": "1", "filters": filters}).json()
    return [
        row["Id"]
        for row in rows
        if (
            (row.get("Labels") or {}).get("com.docker.compose.project.working_dir") or ""
        ).startswith(prefix)
    ]


def our_processes(ctx: Ctx) -> list[int]:
    """Compose processes our server (or this script) started for projects in the temp dir."""
    marker = str(ctx.root).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _delete_through_api(ctx: Ctx, deadline: float) -> None:
    """Containers through the API while the server runs."""
    if not ctx.api_cuids or ctx.proc is None or ctx.proc.poll() is not None:
        return
    log(f"cleanup: deleting {len(ctx.api_cuids)} containers through the API")
    with contextlib.suppress(httpx.HTTPError), ctx.client() as client:
        for cuid in sorted(ctx.api_cuids):
            if time.monotonic() > deadline - 120:
                break
            with contextlib.suppress(httpx.HTTPError):
                if client.delete(f"/containers/{cuid}", timeout=60).status_code in (204, 404):
                    ctx.api_cuids.discard(cuid)


def _down_raw_projects(ctx: Ctx, deadline: float) -> None:
    for name in sorted(ctx.raw_projects):
        if time.monotonic() > deadline - 90:
            break
        pdir = ctx.raw_root / name
        with contextlib.suppress(Exception):
            if pdir.exists():
                raw_compose(ctx, name, pdir, "down")


def _remove_leftovers(ctx: Ctx, problems: list[str]) -> None:
    """Stray Compose processes working on our projects, then every container left."""
    for pid in our_processes(ctx):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(3):
        try:
            ids = our_containers(ctx)
        except (httpx.HTTPError, OSError) as exc:
            problems.append(f"listing containers: {exc}")
            return
        if not ids:
            return
        log(f"cleanup: docker rm -f {len(ids)} leftover containers")
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            run_cmd(["docker", "rm", "-f", *ids], timeout=120)
        time.sleep(1)
    problems.append("containers left behind after 3 attempts")


def cleanup(ctx: Ctx) -> list[str]:
    """Remove everything the run made; what could not be removed, in words."""
    problems: list[str] = []
    deadline = time.monotonic() + CLEANUP_BUDGET
    _delete_through_api(ctx, deadline)
    _down_raw_projects(ctx, deadline)
    try:
        stop_server(ctx)
    except Exception as exc:
        problems.append(f"server stop: {exc}")
    _remove_leftovers(ctx, problems)
    # The network, if this run made it and nothing else uses it.
    if not ctx.network_existed:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            out = run_cmd(["docker", "network", "rm", ctx.network])
            if out.returncode != 0 and "not found" not in out.stderr:
                problems.append(f"network {ctx.network}: {out.stderr.strip()[:200]}")
    # The temp dir (its server log is kept in bench/results first).
    with contextlib.suppress(OSError):
        if ctx.keep_log and ctx.server_log and ctx.server_log.exists():
            ctx.keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ctx.server_log, ctx.keep_log)
    shutil.rmtree(ctx.root, ignore_errors=True)
    if ctx.root.exists():
        problems.append(f"{ctx.root} could not be removed")
    return problems


# -- the run ----------------------------------------------------------------------------


def prepare(ctx: Ctx, results: dict[str, Any], image: str | None = IMAGE) -> None:
    """Check the engine (and the image, if the run needs one), note the machine, start the
    server and pay the first request's argon2 (later ones hit the credential cache)."""
    with ctx.engine() as engine:
        if image and engine.get(f"/images/{image}/json").status_code != 200:
            raise BenchError(f"{image} is not on the engine: run `bash scripts/test-images.sh`")
        ctx.network_existed = engine.get(f"/networks/{ctx.network}").status_code == 200
    results["machine"] = machine(ctx)
    log(f"server: starting on a free port, data in {ctx.data_dir}")
    start_server(ctx)
    with ctx.client() as client:
        resp = client.get("/auth/whoami")
        if resp.status_code != 200:
            raise BenchError(f"/auth/whoami: {resp.status_code} {resp.text[:300]}")


def _server_report(ctx: Ctx, results: dict[str, Any]) -> None:
    results["server_warnings"] = sorted(
        {e.get("event", "?") for e in server_events(ctx) if e.get("level") in ("warning", "error")}
    )
    if ctx.server_log and ctx.server_log.exists():
        results["server_tracebacks"] = ctx.server_log.read_text(errors="replace").count("Traceback")


def _raise_on_signals() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt (once), so that the clean-up runs."""
    stopping = {"flag": False}

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping["flag"]:
            stopping["flag"] = True
            raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _finish(results: dict[str, Any], started: float, cpu_start: list[int], out: Path) -> None:
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["cpu_during_run"] = cpu_usage(cpu_start, cpu_times())
    with contextlib.suppress(OSError):
        results["cpu_pressure_at_end"] = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    with contextlib.suppress(OSError):
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def run_session(
    ctx: Ctx,
    body: Callable[[Ctx, dict[str, Any]], None],
    out: Path,
    results: dict[str, Any] | None = None,
    image: str | None = IMAGE,
) -> tuple[dict[str, Any], int]:
    """Start the server, let ``body`` fill the benchmarks, clean up whatever happens and
    write the results to ``out``. The status is 0, 1 (a failure or a clean-up problem) or
    130 (interrupted); ``results["complete"]`` says whether every benchmark ran."""
    results = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), **(results or {})}
    results.setdefault("benchmarks", {})
    started, cpu_start = time.perf_counter(), cpu_times()
    status = 0
    _raise_on_signals()
    try:
        prepare(ctx, results, image)
        body(ctx, results["benchmarks"])
        _server_report(ctx, results)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); cleaning up")
        status = 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):
            if ctx.server_log and ctx.server_log.exists():
                results["server_log_tail"] = ctx.server_log.read_text(errors="replace")[-3000:]
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        results["cleanup_problems"] = problems = cleanup(ctx)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for problem in problems:
            log(f"cleanup problem: {problem}")
    results["complete"] = status == 0
    _finish(results, started, cpu_start, out)
    return results, status or (1 if problems else 0)
