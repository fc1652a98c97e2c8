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
See docs/benchmarks.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOCKYARD = str(Path(sys.executable).parent / "dockyard")

IMAGE = "dockyard-test/busybox:latest"
COMMAND = "sleep 600"
NETWORK = "dockyard-bench"
USER = "bench"
UID, GID = 1000, 1000  # the server's DEFAULT_USER_UID (default 1000:1000)

# Deadlines (seconds). Every wait in this script is bounded by one of these.
SERVER_START_TIMEOUT = 60
HTTP_TIMEOUT = 30
CREATE_TIMEOUT = 180  # a create waits for `compose up` (the server's own deadline is 120 s)
COMPOSE_TIMEOUT = 180
CONCURRENT_TIMEOUT = 600  # the whole burst of 50
DOCKER_CLI_TIMEOUT = 60
CLEANUP_BUDGET = 300

TARGETS = {
    "create_delete_ratio": 1.05,
    "get_p50_ms": 2.0,
    "list_p99_ms_10k": 20.0,
    "auth_added_ms": 1.0,
    "concurrent_failures": 0,
}


class BenchError(RuntimeError):
    pass


# -- small helpers -----------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values_s: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(pct(ms, 50), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host:
        raise BenchError(f"DOCKER_HOST={host}: this script talks to a unix socket only")
    return "/var/run/docker.sock"


def run_cmd(
    argv: list[str], timeout: float = DOCKER_CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )


def timed_loop(count: int, call: Callable[[], httpx.Response], expect: int = 200) -> list[float]:
    out: list[float] = []
    for _ in range(count):
        t0 = time.perf_counter()
        resp = call()
        dt = time.perf_counter() - t0
        if resp.status_code != expect:
            where = f"{resp.request.method} {resp.request.url.path}"
            raise BenchError(f"{where}: {resp.status_code} {resp.text[:300]}")
        out.append(dt)
    return out


# -- the run's context: everything created, so that everything can be removed --------


@dataclass
class Ctx:
    root: Path
    data_dir: Path
    log_dir: Path
    raw_root: Path
    compose_bin: str
    compose_version: str
    password: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None
    network_existed: bool = True
    api_cuids: set[str] = field(default_factory=set)
    raw_projects: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (USER, self.password)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=HTTP_TIMEOUT, **kw)

    def engine(self) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=docker_socket())
        return httpx.Client(transport=transport, base_url="http://docker", timeout=HTTP_TIMEOUT)

    def compose_env(self) -> dict[str, str]:
        return dict(os.environ)


def new_ctx(prefix: str) -> Ctx:
    """A fresh run: its own temporary folder (a short, unique path that marks this run's
    projects, folders and processes), a random password, the Compose binary to compare to."""
    sys.path.insert(0, str(REPO / "src"))
    from dockyard.adapters.compose import find_compose_binary

    binary, compose_version = find_compose_binary()
    root = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    ctx = Ctx(
        root=root,
        data_dir=root / "data",
        log_dir=root / "logs",
        raw_root=root / "raw",
        compose_bin=str(binary),
        compose_version=compose_version,
        password=secrets.token_urlsafe(24),
    )
    ctx.raw_root.mkdir()
    return ctx


# -- the server -----------------------------------------------------------------------


def start_server(ctx: Ctx) -> None:
    ctx.port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(ctx.port),
        "APP_USER": USER,
        "APP_PASS": ctx.password,
        "DATA_DIR": str(ctx.data_dir),
        "LOG_DIR": str(ctx.log_dir),
        "NETWORK_NAME": NETWORK,
        "RECONCILE_INTERVAL": "3600",
        "DEFAULT_USER_UID": f"{UID}:{GID}",
    }
    from dockyard.settings import Settings

    # Defaults for everything else: a developer's shell must not tune or redirect the bench.
    mine = {"HOST", "PORT", "APP_USER", "APP_PASS", "DATA_DIR", "LOG_DIR", "NETWORK_NAME"}
    mine |= {"RECONCILE_INTERVAL", "DEFAULT_USER_UID", "DOCKER_HOST"}
    for name in Settings.model_fields:
        if name.upper() not in mine:
            env.pop(name.upper(), None)
    ctx.server_log = ctx.root / "server.out"
    with ctx.server_log.open("ab") as out:
        # cwd = the temp dir, so that a developer's ./.env is not read. Its own session: a
        # Ctrl-C in the terminal reaches only this script, which then cleans up through the
        # API before it stops the server.
        ctx.proc = subprocess.Popen(
            [DOCKYARD, "serve"],
            cwd=ctx.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if ctx.proc.poll() is not None:
            raise BenchError(f"server exited at start-up:\n{ctx.server_log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{ctx.url}/livez", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise BenchError("server did not answer /livez within 60 s")


def stop_server(ctx: Ctx) -> None:
    proc = ctx.proc
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def server_cpu(ctx: Ctx) -> tuple[float, float]:
    """CPU seconds of the server process itself and of the children it has reaped
    (its Compose calls), from /proc/<pid>/stat."""
    if ctx.proc is None:
        return 0.0, 0.0
    try:
        raw = Path(f"/proc/{ctx.proc.pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = raw.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def server_events(ctx: Ctx) -> list[dict[str, Any]]:
    if ctx.server_log is None or not ctx.server_log.exists():
        return []
    events = []
    for line in ctx.server_log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def compose_overlap(ctx: Ctx, verb: str, cuids: set[str]) -> int:
    """The most `compose <verb>` calls of these projects that ran at the same time."""
    edges: list[tuple[float, int]] = []
    for e in server_events(ctx):
        if e.get("event") == f"compose.{verb}.finished" and e.get("project") in cuids:
            end = datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")).timestamp()
            edges += [(end - float(e["duration_ms"]) / 1000, 1), (end, -1)]
    most = running = 0
    for _, step in sorted(edges):
        running += step
        most = max(most, running)
    return most


def compose_durations(ctx: Ctx, verb: str, cuids: set[str]) -> list[float]:
    """duration_ms of the server's own `compose <verb>` calls for these projects."""
    return [
        float(e["duration_ms"])
        for e in server_events(ctx)
        if e.get("event") == f"compose.{verb}.finished" and e.get("project") in cuids
    ]


def server_side(ctx: Ctx, request_id: str, expect: int) -> dict[str, float] | None:
    """The server's own duration_ms (LOG_DIR/actions.jsonl) of the requests sent with this
    X-Request-ID: their time once inside the app. The line is written just after the
    response is sent, so the last one may lag a little: wait (bounded) for ``expect``."""
    path = ctx.log_dir / "actions.jsonl"
    found: list[float] = []
    for _ in range(50):
        found = []
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    if entry.get("request_id") == request_id:
                        found.append(float(entry["duration_ms"]) / 1000)
        if len(found) >= expect:
            break
        time.sleep(0.1)
    if len(found) != expect:
        log(f"   action log: {len(found)} of {expect} entries for {request_id}")
    return summary(found) if found else None


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def request_phases(ctx: Ctx, request_id: str, verb: str, cuids: set[str]) -> dict[str, float]:
    """Mean ms of a request's time in the app before and after its `compose <verb>` call,
    lining up the action log (end time, duration) with the server's compose events."""
    calls = [
        (_ts(e["timestamp"]) - float(e["duration_ms"]) / 1000, _ts(e["timestamp"]))
        for e in server_events(ctx)
        if e.get("event") == f"compose.{verb}.finished" and e.get("project") in cuids
    ]
    before: list[float] = []
    after: list[float] = []
    with contextlib.suppress(OSError):
        for line in (ctx.log_dir / "actions.jsonl").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if entry.get("request_id") != request_id:
                    continue
                end = _ts(entry["timestamp"])
                start = end - float(entry["duration_ms"]) / 1000
                for c_start, c_end in calls:
                    if start - 0.002 <= c_start and c_end <= end + 0.002:
                        before.append(c_start - start)
                        after.append(end - c_end)
                        break
    if not before:
        return {}
    return {
        "n": len(before),
        "before_compose_ms": round(statistics.fmean(before) * 1000, 1),
        "after_compose_ms": round(statistics.fmean(after) * 1000, 1),
    }


class Tags:
    """X-Request-ID headers: "bench-<key>-<phase>", so that the action log can be read back."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.phase = "warm"

    def __call__(self, key: str) -> dict[str, str]:
        return {"X-Request-ID": f"{self.rid(key)}"}

    def rid(self, key: str) -> str:
        return f"bench{self.bench}-{key}-{self.phase}"


# -- API containers --------------------------------------------------------------------


def api_create(client: httpx.Client, ctx: Ctx, rid: str | None = None) -> tuple[str, float]:
    t0 = time.perf_counter()
    resp = client.post(
        "/containers",
        json={"image": IMAGE, "command": COMMAND, "start": True},
        timeout=CREATE_TIMEOUT,
        headers={"X-Request-ID": rid} if rid else None,
    )
    dt = time.perf_counter() - t0
    if resp.status_code != 201:
        raise BenchError(f"POST /containers: {resp.status_code} {resp.text[:500]}")
    cuid = str(resp.json()["cuid"])
    ctx.api_cuids.add(cuid)
    if resp.json().get("status") != "running":
        raise BenchError(f"created container {cuid} is {resp.json().get('status')}, not running")
    return cuid, dt


def api_delete(client: httpx.Client, ctx: Ctx, cuid: str, rid: str | None = None) -> float:
    t0 = time.perf_counter()
    resp = client.delete(
        f"/containers/{cuid}",
        timeout=CREATE_TIMEOUT,
        headers={"X-Request-ID": rid} if rid else None,
    )
    dt = time.perf_counter() - t0
    if resp.status_code != 204:
        raise BenchError(f"DELETE /containers/{cuid}: {resp.status_code} {resp.text[:500]}")
    ctx.api_cuids.discard(cuid)
    return dt


# -- raw Compose projects --------------------------------------------------------------


def raw_document(
    template: dict[str, Any], api_cuid: str, api_app_dir: str, name: str, app_dir: Path
) -> dict[str, Any]:
    """Dockyard's document for one container, moved to another project and folder.

    The label ``dockyard.managed`` is set to "false" so that the server (its event follower
    and reconcile) ignores the raw containers: only what names the project changes.
    """
    doc = json.loads(json.dumps(template))
    doc["name"] = name
    service = doc["services"]["app"]
    found = False
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("source") == api_app_dir:
            volume["source"] = str(app_dir)
            found = True
    if not found:
        raise BenchError(f"no bind mount of {api_app_dir} in the generated compose file")
    env = service.get("environment") or {}
    if env.get("CONTAINER_UID") == api_cuid:
        env["CONTAINER_UID"] = name
    labels = service.get("labels") or {}
    if "dockyard.cuid" in labels:
        labels["dockyard.cuid"] = name
    if "dockyard.managed" in labels:
        labels["dockyard.managed"] = "false"
    return doc


def make_raw_project(
    ctx: Ctx, template: dict[str, Any], api_cuid: str, api_app_dir: str, name: str
) -> Path:
    project_dir = ctx.raw_root / name
    project_dir.mkdir(mode=0o700, parents=True)
    app_dir = project_dir / "app"
    app_dir.mkdir(mode=0o755)
    os.chown(app_dir, UID, GID)
    doc = raw_document(template, api_cuid, api_app_dir, name, app_dir)
    text = "# Copy of a Dockyard-generated file, for bench/run.py\n"
    text += yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    compose_file = project_dir / "compose.yaml"
    compose_file.write_text(text, encoding="utf-8")
    compose_file.chmod(0o600)
    return project_dir


def raw_argv(ctx: Ctx, name: str, project_dir: Path, verb: str) -> list[str]:
    base = [
        ctx.compose_bin,
        "--project-name",
        name,
        "--project-directory",
        str(project_dir),
        "--file",
        str(project_dir / "compose.yaml"),
    ]
    if verb == "up":
        return [*base, "up", "--detach", "--no-build", "--pull", "never", "--remove-orphans"]
    return [*base, "down", "--remove-orphans", "--timeout", "10"]


def raw_compose(ctx: Ctx, name: str, project_dir: Path, verb: str) -> float:
    """Run one raw Compose call the way the server does (own session, no stdin, pipes)."""
    if verb == "up":
        ctx.raw_projects.add(name)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        raw_argv(ctx, name, project_dir, verb),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ctx.compose_env(),
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=COMPOSE_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"raw compose {verb} {name} failed: {err.decode(errors='replace')[-800:]}")
    if verb == "down":
        ctx.raw_projects.discard(name)
    return dt


async def raw_compose_async(
    ctx: Ctx, name: str, project_dir: Path, verb: str
) -> tuple[float, str | None]:
    if verb == "up":
        ctx.raw_projects.add(name)
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *raw_argv(ctx, name, project_dir, verb),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ctx.compose_env(),
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(COMPOSE_TIMEOUT):
            _, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.shield(proc.wait())
        raise
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        return dt, err.decode(errors="replace")[-500:]
    if verb == "down":
        ctx.raw_projects.discard(name)
    return dt, None


# -- 1. create+start+delete ---------------------------------------------------------------


def capture_template(ctx: Ctx, client: httpx.Client) -> tuple[dict[str, Any], str, str]:
    """The compose file Dockyard generated for one container (kept before its delete).

    Returns the parsed document, that container's cuid and its bind-mount source."""
    saved = ctx.root / "generated-compose.yaml"
    if not saved.exists():
        cuid, _ = api_create(client, ctx)
        text = (ctx.data_dir / "containers" / cuid / "compose.yaml").read_text(encoding="utf-8")
        saved.write_text(text, encoding="utf-8")
        api_delete(client, ctx, cuid)
    template = yaml.safe_load(saved.read_text(encoding="utf-8"))
    cuid = str(template["name"])
    return template, cuid, str(ctx.data_dir / "containers" / cuid / "app")


def bench_create_delete(ctx: Ctx, iterations: int) -> dict[str, Any]:
    log(f"1. create+start+delete: {iterations} API vs {iterations} raw Compose, interleaved")
    api_totals: list[float] = []
    api_creates: list[float] = []
    api_deletes: list[float] = []
    raw_totals: list[float] = []
    raw_ups: list[float] = []
    raw_downs: list[float] = []
    measured: set[str] = set()
    server_own_cpu: list[float] = []
    compose_cpu: list[float] = []

    with ctx.client() as client:
        # The warm-up (not counted) also yields the compose file the raw side replays.
        template, cuid, api_app_dir = capture_template(ctx, client)

        def raw_iteration(i: int, count: bool) -> None:
            name = f"dybench-{ctx.root.name[-8:].lower()}-seq{i}"
            pdir = make_raw_project(ctx, template, cuid, api_app_dir, name)
            up = raw_compose(ctx, name, pdir, "up")
            down = raw_compose(ctx, name, pdir, "down")
            shutil.rmtree(pdir, ignore_errors=True)
            if count:
                raw_ups.append(up)
                raw_downs.append(down)
                raw_totals.append(up + down)

        def api_iteration(count: bool) -> None:
            cpu0 = server_cpu(ctx)
            c, create = api_create(client, ctx, "bench1-create" if count else None)
            delete = api_delete(client, ctx, c, "bench1-delete" if count else None)
            cpu1 = server_cpu(ctx)
            if count:
                server_own_cpu.append(cpu1[0] - cpu0[0])
                compose_cpu.append(cpu1[1] - cpu0[1])
                measured.add(c)
                api_creates.append(create)
                api_deletes.append(delete)
                api_totals.append(create + delete)

        raw_iteration(0, count=False)  # warm-up, not counted
        for i in range(iterations):
            if i % 2 == 0:
                api_iteration(True)
                raw_iteration(i + 1, True)
            else:
                raw_iteration(i + 1, True)
                api_iteration(True)

    api = summary(api_totals)
    raw = summary(raw_totals)
    srv_up = compose_durations(ctx, "up", measured)
    srv_down = compose_durations(ctx, "down", measured)
    result: dict[str, Any] = {
        "iterations": iterations,
        "samples_ms": {
            "api": [round(v * 1000, 1) for v in api_totals],
            "raw": [round(v * 1000, 1) for v in raw_totals],
        },
        "api": api,
        "api_create": summary(api_creates),
        "api_delete": summary(api_deletes),
        "raw": raw,
        "raw_up": summary(raw_ups),
        "raw_down": summary(raw_downs),
        "ratio_mean": ratio(api["mean_ms"], raw["mean_ms"]),
        "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"]),
        "server_compose_up": summary([d / 1000 for d in srv_up]) if srv_up else None,
        "server_compose_down": summary([d / 1000 for d in srv_down]) if srv_down else None,
    }
    result["server_cpu_per_iteration_ms"] = round(statistics.fmean(server_own_cpu) * 1000, 1)
    result["server_compose_cpu_per_iteration_ms"] = round(statistics.fmean(compose_cpu) * 1000, 1)
    result["server_create"] = server_side(ctx, "bench1-create", iterations)
    result["server_delete"] = server_side(ctx, "bench1-delete", iterations)
    result["create_phases"] = request_phases(ctx, "bench1-create", "up", measured)
    result["delete_phases"] = request_phases(ctx, "bench1-delete", "down", measured)
    if srv_up and srv_down:
        compose_ms = statistics.fmean(srv_up) + statistics.fmean(srv_down)
        result["api_outside_compose_mean_ms"] = round(api["mean_ms"] - compose_ms, 1)
        if result["server_create"] and result["server_delete"]:
            inside = result["server_create"]["mean_ms"] + result["server_delete"]["mean_ms"]
            # Dockyard's own work inside the app (store, files, engine reads, logging) ...
            result["server_outside_compose_mean_ms"] = round(inside - compose_ms, 1)
            # ... and what HTTP, uvicorn and the client add around it.
            result["http_and_client_mean_ms"] = round(api["mean_ms"] - inside, 1)
    result["target"] = f"ratio <= {TARGETS['create_delete_ratio']}"
    result["met"] = result["ratio_mean"] <= TARGETS["create_delete_ratio"]
    return result


# -- 2. GET /containers/{cuid} ---------------------------------------------------------------


def bench_get(ctx: Ctx, cuid: str, requests: int, warmup: int) -> dict[str, Any]:
    """The API read and the engine's inspect, round-robin with three reference reads that
    show where the time goes: /livez (HTTP and framework only), /auth/whoami (+ cached
    credentials) and GET /containers?limit=1 (+ one store query, no engine call)."""
    log(f"2. GET /containers/{{cuid}}: {requests} after {warmup} warm-up, vs engine inspect")
    name = f"{cuid}-app-1"
    tag = Tags("2")
    with ctx.client() as client, ctx.engine() as engine:
        calls: dict[str, Callable[[], httpx.Response]] = {
            "api": lambda: client.get(f"/containers/{cuid}", headers=tag("api")),
            "raw": lambda: engine.get(f"/containers/{name}/json"),
            "livez": lambda: client.get("/livez", auth=None, headers=tag("livez")),
            "whoami": lambda: client.get("/auth/whoami", headers=tag("whoami")),
            "store_only": lambda: client.get(
                "/containers", params={"limit": "1"}, headers=tag("store_only")
            ),
        }
        times: dict[str, list[float]] = {key: [] for key in calls}
        for _ in range(warmup):
            for call in calls.values():
                timed_loop(1, call)
        tag.phase = "run"
        for _ in range(requests):
            for key, call in calls.items():
                times[key] += timed_loop(1, call)
        if client.get(f"/containers/{cuid}").json().get("status") != "running":
            raise BenchError(f"container {cuid} is no longer running")
    api = summary(times["api"])
    raw = summary(times["raw"])
    return {
        "requests": requests,
        "api": api,
        "raw": raw,
        "ratio_p50": ratio(api["p50_ms"], raw["p50_ms"]),
        "ratio_p99": ratio(api["p99_ms"], raw["p99_ms"]),
        "reference": {key: summary(times[key]) for key in ("livez", "whoami", "store_only")},
        "server_side": {
            key: server_side(ctx, tag.rid(key), requests)
            for key in ("api", "livez", "whoami", "store_only")
        },
        "target": f"p50 <= {TARGETS['get_p50_ms']} ms",
        "met": api["p50_ms"] <= TARGETS["get_p50_ms"],
    }


# -- 3. GET /containers?limit=50 ------------------------------------------------------------


async def _seed(db_path: Path, count: int) -> float:
    from sqlalchemy import func, insert, select

    from dockyard.domain.models import ContainerRecord, ContainerSpec, Status, new_cuid
    from dockyard.store import Database
    from dockyard.store.tables import containers

    spec = ContainerSpec(image=IMAGE, command=COMMAND, tags=["bench"])
    spec_json = spec.model_dump(mode="json")
    try:  # the repository's own mapping, so that the rows are what insert() would write
        from dockyard.store.containers import _row_values as row_values
    except ImportError:
        row_values = None
    rows = []
    for _ in range(count):
        record = ContainerRecord(
            cuid=new_cuid(), owner=USER, spec=spec, status=Status.EXITED, exit_code=0
        )
        if row_values is not None:
            rows.append(row_values(record))
            continue
        rows.append(
            {
                "cuid": record.cuid,
                "owner": record.owner,
                "image": spec.image,
                "name": spec.name,
                "tags_text": "," + ",".join(spec.tags) + ",",
                "status": record.status.value,
                "spec": spec_json,
                "engine": record.engine,
                "exit_code": record.exit_code,
                "error": None,
                "created_at": record.created_at,
                "started_at": None,
                "finished_at": None,
            }
        )
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
    import sqlite3

    with contextlib.closing(sqlite3.connect(ctx.data_dir / "dockyard.db", timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM containers").fetchone()[0])


def bench_list(ctx: Ctx, sizes: list[int], requests: int, warmup: int) -> dict[str, Any]:
    log(f"3. GET /containers?limit=50 with {sizes} records: {requests} after {warmup} warm-up")
    db_path = ctx.data_dir / "dockyard.db"
    out: dict[str, Any] = {"requests": requests, "sizes": {}}
    with ctx.client() as client, ctx.engine() as engine:
        raw_call = lambda: engine.get("/containers/json", params={"all": "1", "limit": "50"})  # noqa: E731
        tag = Tags("3")
        api_call = lambda: client.get("/containers", params={"limit": "50"}, headers=tag("list"))  # noqa: E731
        for size in sizes:
            have = store_count(ctx)
            if size > have:
                asyncio.run(_seed(db_path, size - have))
            total = store_count(ctx)
            tag.phase = "warm"
            timed_loop(warmup, api_call)
            timed_loop(warmup, raw_call)
            page = api_call().json()
            if len(page["containers"]) != 50 or not page.get("next_cursor"):
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
        engine_count = len(engine.get("/containers/json", params={"all": "1"}).json())
    out["engine_containers"] = engine_count
    biggest = out["sizes"][str(max(sizes))]
    out["target"] = f"p99 <= {TARGETS['list_p99_ms_10k']} ms at {max(sizes)} records"
    out["met"] = biggest["api"]["p99_ms"] <= TARGETS["list_p99_ms_10k"]
    return out


# -- 4. authenticated vs open ---------------------------------------------------------------


def bench_auth(ctx: Ctx, requests: int, warmup: int) -> dict[str, Any]:
    log(f"4. /auth/whoami (Basic) vs /livez: {requests} each after {warmup} warm-up, interleaved")
    tag = Tags("4")
    with ctx.client() as client:
        auth_call = lambda: client.get("/auth/whoami", headers=tag("whoami"))  # noqa: E731
        open_call = lambda: client.get("/livez", auth=None, headers=tag("livez"))  # noqa: E731
        for _ in range(warmup):
            timed_loop(1, auth_call)
            timed_loop(1, open_call)
        tag.phase = "run"
        auth_t: list[float] = []
        open_t: list[float] = []
        for i in range(requests):
            first, second = (auth_call, open_call) if i % 2 == 0 else (open_call, auth_call)
            a = timed_loop(1, first)[0]
            b = timed_loop(1, second)[0]
            if i % 2 == 0:
                auth_t.append(a)
                open_t.append(b)
            else:
                open_t.append(a)
                auth_t.append(b)
    auth = summary(auth_t)
    opened = summary(open_t)
    added = round(auth["p50_ms"] - opened["p50_ms"], 3)
    srv_auth = server_side(ctx, tag.rid("whoami"), requests)
    srv_open = server_side(ctx, tag.rid("livez"), requests)
    return {
        "requests": requests,
        "authenticated": auth,
        "open": opened,
        "server_side": {"authenticated": srv_auth, "open": srv_open},
        "server_added_p50_ms": round(srv_auth["p50_ms"] - srv_open["p50_ms"], 3)
        if srv_auth and srv_open
        else None,
        "added_p50_ms": added,
        "ratio_p50": ratio(auth["p50_ms"], opened["p50_ms"]),
        "target": f"added p50 <= {TARGETS['auth_added_ms']} ms",
        "met": added <= TARGETS["auth_added_ms"],
    }


# -- 5. concurrent creates ------------------------------------------------------------------


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
        statuses: dict[str, int] = {}
        for code, _, _ in answers:
            statuses[str(code)] = statuses.get(str(code), 0) + 1
        errors = sorted({e for code, _, e in answers if code != 201})[:5]

        # Not counted: delete all of them.
        async def drop(cuid: str) -> None:
            resp = await client.delete(f"/containers/{cuid}")
            if resp.status_code == 204:
                ctx.api_cuids.discard(cuid)

        t1 = time.perf_counter()
        async with asyncio.timeout(CONCURRENT_TIMEOUT):
            await asyncio.gather(*(drop(c) for c in cuids))
        delete_wall = time.perf_counter() - t1
    return {
        "wall_s": round(wall, 3),
        "non_201": count - statuses.get("201", 0),
        "statuses": statuses,
        "errors": errors,
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
        "met": api["non_201"] == TARGETS["concurrent_failures"],
    }


# -- machine ------------------------------------------------------------------------------


def cpu_times() -> list[int]:
    """The aggregate "cpu" line of /proc/stat (user nice system idle iowait irq softirq
    steal ...), in ticks."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return []


def cpu_usage(before: list[int], after: list[int]) -> dict[str, float]:
    """Busy and stolen share of all CPUs between two cpu_times() readings, in percent."""
    if len(before) < 8 or len(after) < 8:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8]) or 1
    return {
        "busy_pct": round(100 * (total - delta[3] - delta[4]) / total, 1),
        "steal_pct": round(100 * delta[7] / total, 1),
    }


def machine(ctx: Ctx) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "compose_version": ctx.compose_version,
        "compose_binary": ctx.compose_bin,
    }
    with ctx.engine() as engine:
        version = engine.get("/version").json()
        info["docker_server_version"] = version.get("Version")
        info["docker_api_version"] = version.get("ApiVersion")
        engine_info = engine.get("/info").json()
        info["docker_storage_driver"] = engine_info.get("Driver")
        info["docker_cgroup"] = (
            f"v{engine_info.get('CgroupVersion')} {engine_info.get('CgroupDriver')}"
        )
        info["engine_containers_at_start"] = engine_info.get("Containers")
        info["memory_gib"] = round(int(engine_info.get("MemTotal") or 0) / 2**30, 1)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        out = run_cmd(["docker", "version", "--format", "{{.Client.Version}}"])
        info["docker_client_version"] = out.stdout.strip() or None
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        head = run_cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=10)
        dirty = run_cmd(["git", "-C", str(REPO), "status", "--porcelain", "src"], timeout=10)
        info["git_commit"] = head.stdout.strip() or None
        info["git_src_uncommitted_files"] = len(dirty.stdout.splitlines())
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


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


def cleanup(ctx: Ctx) -> list[str]:
    problems: list[str] = []
    deadline = time.monotonic() + CLEANUP_BUDGET
    # 1. containers through the API while the server runs.
    if ctx.api_cuids and ctx.proc is not None and ctx.proc.poll() is None:
        log(f"cleanup: deleting {len(ctx.api_cuids)} containers through the API")
        with contextlib.suppress(httpx.HTTPError), ctx.client() as client:
            for cuid in sorted(ctx.api_cuids):
                if time.monotonic() > deadline - 120:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if client.delete(f"/containers/{cuid}", timeout=60).status_code in (204, 404):
                        ctx.api_cuids.discard(cuid)
    # 2. raw projects still up.
    for name in sorted(ctx.raw_projects):
        if time.monotonic() > deadline - 90:
            break
        pdir = ctx.raw_root / name
        with contextlib.suppress(Exception):
            if pdir.exists():
                raw_compose(ctx, name, pdir, "down")
    # 3. the server.
    try:
        stop_server(ctx)
    except Exception as exc:
        problems.append(f"server stop: {exc}")
    # 4. stray Compose processes working on our projects, then every container left.
    for pid in our_processes(ctx):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(3):
        try:
            ids = our_containers(ctx)
        except (httpx.HTTPError, OSError) as exc:
            problems.append(f"listing containers: {exc}")
            break
        if not ids:
            break
        log(f"cleanup: docker rm -f {len(ids)} leftover containers")
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            run_cmd(["docker", "rm", "-f", *ids], timeout=120)
        time.sleep(1)
    else:
        problems.append("containers left behind after 3 attempts")
    # 5. the network, if this run made it and nothing else uses it.
    if not ctx.network_existed:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            out = run_cmd(["docker", "network", "rm", NETWORK])
            if out.returncode != 0 and "not found" not in out.stderr:
                problems.append(f"network {NETWORK}: {out.stderr.strip()[:200]}")
    # 6. the temp dir (its server log is kept in bench/results first).
    with contextlib.suppress(OSError):
        if ctx.server_log and ctx.server_log.exists():
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ctx.server_log, RESULTS / "latest-server.log")
    shutil.rmtree(ctx.root, ignore_errors=True)
    if ctx.root.exists():
        problems.append(f"{ctx.root} could not be removed")
    return problems


# -- report -----------------------------------------------------------------------------


def rows(results: dict[str, Any]) -> Iterator[tuple[str, str, str, str, str, str]]:
    b = results["benchmarks"]
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    if "create_delete" in b:
        r = b["create_delete"]
        yield (
            f"1. create+start+delete, mean (p50), n={r['iterations']}",
            f"{r['api']['mean_ms']:.0f} ms ({r['api']['p50_ms']:.0f})",
            f"{r['raw']['mean_ms']:.0f} ms ({r['raw']['p50_ms']:.0f})",
            f"{r['ratio_mean']:.3f} ({r['ratio_p50']:.3f})",
            "ratio <= 1.05",
            yes(r["met"]),
        )
    if "get" in b:
        r = b["get"]
        yield (
            f"2. GET /containers/{{cuid}} p50 / p99, n={r['requests']}",
            f"{r['api']['p50_ms']:.2f} / {r['api']['p99_ms']:.2f} ms",
            f"{r['raw']['p50_ms']:.2f} / {r['raw']['p99_ms']:.2f} ms",
            f"{r['ratio_p50']:.2f} / {r['ratio_p99']:.2f}",
            "p50 <= 2 ms",
            yes(r["met"]),
        )
    if "list" in b:
        r = b["list"]
        sizes = sorted(r["sizes"], key=int)
        for size in sizes:
            s = r["sizes"][size]
            big = size == sizes[-1]
            yield (
                f"3. GET /containers?limit=50, {int(size):,} records, p50 / p99",
                f"{s['api']['p50_ms']:.2f} / {s['api']['p99_ms']:.2f} ms",
                f"{s['raw']['p50_ms']:.2f} / {s['raw']['p99_ms']:.2f} ms",
                f"{s['ratio_p50']:.2f} / {s['ratio_p99']:.2f}",
                "p99 <= 20 ms" if big else "-",
                yes(r["met"]) if big else "-",
            )
    if "auth" in b:
        r = b["auth"]
        yield (
            f"4. /auth/whoami vs /livez p50, n={r['requests']} each",
            f"{r['authenticated']['p50_ms']:.3f} ms",
            f"{r['open']['p50_ms']:.3f} ms",
            f"+{r['added_p50_ms']:.3f} ms ({r['ratio_p50']:.2f})",
            "added <= 1 ms",
            yes(r["met"]),
        )
    if "concurrent" in b:
        r = b["concurrent"]
        yield (
            f"5. {r['count']} concurrent creates, wall (non-201)",
            f"{r['api']['wall_s']:.2f} s ({r['api']['non_201']})",
            f"{r['raw']['wall_s']:.2f} s ({r['raw']['failures']})",
            f"{r['ratio_wall']:.2f}",
            "0 non-201",
            yes(r["met"]),
        )


def notes(results: dict[str, Any]) -> Iterator[str]:
    """Where the time goes, from the server's own logs and the reference reads."""
    b = results["benchmarks"]
    r = b.get("create_delete")
    if r and r.get("server_compose_up") and r.get("server_compose_down"):
        up, down = r["server_compose_up"]["mean_ms"], r["server_compose_down"]["mean_ms"]
        yield (
            f"1: per iteration (means) the server's compose up + down took {up:.0f} + "
            f"{down:.0f} ms (raw: {r['raw_up']['mean_ms']:.0f} + {r['raw_down']['mean_ms']:.0f})"
            f"; Dockyard's own work in the app {r.get('server_outside_compose_mean_ms')} ms; "
            f"HTTP + client {r.get('http_and_client_mean_ms')} ms"
        )
        cp, dp = r.get("create_phases") or {}, r.get("delete_phases") or {}
        if cp and dp:
            yield (
                f"1: in the app, POST spends {cp['before_compose_ms']} ms before and "
                f"{cp['after_compose_ms']} ms after its compose up, DELETE "
                f"{dp['before_compose_ms']} + {dp['after_compose_ms']} ms around compose down; "
                f"server CPU {r['server_cpu_per_iteration_ms']} ms per iteration"
            )
    r = b.get("get")
    if r:
        ref, srv = r["reference"], r.get("server_side") or {}
        inside = lambda key: f"{srv[key]['p50_ms']:.2f}" if srv.get(key) else "?"  # noqa: E731
        yield (
            f"2: p50 client (in app): /livez {ref['livez']['p50_ms']:.2f} ({inside('livez')}), "
            f"/auth/whoami {ref['whoami']['p50_ms']:.2f} ({inside('whoami')}), "
            f"GET /containers?limit=1 {ref['store_only']['p50_ms']:.2f} "
            f"({inside('store_only')}), GET /containers/{{cuid}} {r['api']['p50_ms']:.2f} "
            f"({inside('api')}) ms; engine inspect alone {r['raw']['p50_ms']:.2f} ms"
        )
    r = b.get("auth")
    if r and r.get("server_added_p50_ms") is not None:
        yield f"4: inside the app, credentials add {r['server_added_p50_ms']:.3f} ms at p50"
    r = b.get("concurrent")
    if r and r.get("server_compose_up"):
        yield (
            f"5: the server's compose up calls took {r['server_compose_up']['mean_ms']:.0f} ms "
            f"on average, at most {r.get('server_max_concurrency', '?')} at a time (raw, all "
            f"{r['count']} at once: {r['raw']['per_call']['mean_ms']:.0f} ms)"
        )


def print_table(results: dict[str, Any]) -> None:
    header = ("benchmark", "Dockyard", "raw baseline", "ratio", "target", "met")
    table = [header, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    print()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in table[1:]:
        print(line(row))
    for note in notes(results):
        print(f"  * {note}")
    m = results["machine"]
    print(
        f"\n{m.get('cpus')} CPUs, Docker {m.get('docker_server_version')}, "
        f"Compose {m.get('compose_version')}; {results['duration_s']:.0f} s; "
        f"figures in {RESULTS / 'latest.json'}"
    )


# -- main -----------------------------------------------------------------------------------


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


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (the server chowns folders and drives Docker)", file=sys.stderr)
        return 2
    stopping = {"flag": False}

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping["flag"]:
            stopping["flag"] = True
            raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ctx = new_ctx("dybench-")
    started = time.perf_counter()
    cpu_start = cpu_times()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "image": IMAGE,
        "benchmarks": {},
    }
    status = 0
    try:
        with ctx.engine() as engine:
            if engine.get("/images/" + IMAGE + "/json").status_code != 200:
                raise BenchError(f"{IMAGE} is not on the engine: run `bash scripts/test-images.sh`")
            ctx.network_existed = engine.get(f"/networks/{NETWORK}").status_code == 200
        results["machine"] = machine(ctx)
        log(f"server: starting on a free port, data in {ctx.data_dir}")
        start_server(ctx)
        with ctx.client() as client:  # the first request pays argon2; later ones hit the cache
            resp = client.get("/auth/whoami")
            if resp.status_code != 200:
                raise BenchError(f"/auth/whoami: {resp.status_code} {resp.text[:300]}")
        b = results["benchmarks"]
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
        log_text = ctx.server_log.read_text(errors="replace") if ctx.server_log else ""
        results["server_warnings"] = sorted(
            {
                e.get("event", "?")
                for e in server_events(ctx)
                if e.get("level") in ("warning", "error")
            }
        )
        results["server_tracebacks"] = log_text.count("Traceback")
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}); cleaning up")
        status = 130
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        problems = cleanup(ctx)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        results["cleanup_problems"] = problems
        for problem in problems:
            log(f"cleanup problem: {problem}")
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["cpu_during_run"] = cpu_usage(cpu_start, cpu_times())
    with contextlib.suppress(OSError):
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["complete"] = status == 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if "machine" in results and results["benchmarks"]:
        print_table(results)
    if status == 0 and problems:
        status = 1
    if (
        status == 0
        and args.strict
        and not all(b.get("met") for b in results["benchmarks"].values())
    ):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
