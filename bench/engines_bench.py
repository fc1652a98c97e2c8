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

3. create+start+delete on a second engine (extra dockerd 1, ``scripts/extra-engines.sh``,
   started if it is not running, never stopped here) through the API vs the same compose
   file through Compose against that engine (``DOCKER_HOST=unix:///run/dockyard-eng-1.sock
   docker compose up/down --volumes``), in turn; target mean ratio <= 1.05;
4. a 100 MB upload into a container's ``/app`` on that engine: ``POST .../upload-zip``
   (a stored ZIP of one random file) vs ``docker -H unix:///run/dockyard-eng-1.sock cp``
   of the same file; target mean ratio <= 1.5. ``--remote-iterations 0`` skips 3 and 4.

It prints a table; ``--json FILE`` also writes the figures. The server, its temporary
folder, its containers and the raw projects (on both engines), and the network (if it
made it) are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.base import COMMAND, COMPOSE_TIMEOUT, CREATE_TIMEOUT, IMAGE
from harness.containers import raw_argv
from harness.context import Ctx, new_ctx
from harness.session import cleanup, prepare
from harness.stats import ratio, summary, timed_loop
from harness.table import print_rows, yes

NETWORK = "dockyard-bench-engines"
TARGETS = {
    "placement_p50_ms": 1.0,
    "cluster_info_p50_ms": 10.0,
    "remote_create_ratio": 1.05,
    "remote_upload_ratio": 1.5,
}
REMOTE = "bench-remote"
REMOTE_ADDR = "unix:///run/dockyard-eng-1.sock"
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "extra-engines.sh"
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


# -- 3 and 4: a second engine ------------------------------------------------------------


def _remote_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": REMOTE_ADDR, "DOCKER_TLS_VERIFY": ""}


def _remote_compose(ctx: Ctx, name: str, project_dir: Path, verb: str) -> float:
    """One raw Compose call against the second engine (``down`` removes the volume)."""
    argv = raw_argv(ctx, name, project_dir, verb) + (["--volumes"] if verb == "down" else [])
    t0 = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, env=_remote_env(), timeout=COMPOSE_TIMEOUT, check=False,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        raise base.BenchError(f"raw compose {verb} {name}: {done.stderr.decode()[-600:]}")
    return dt


def _remote_create(admin: httpx.Client, ctx: Ctx) -> tuple[str, float]:
    t0 = time.perf_counter()
    resp = admin.post(
        "/containers",
        json={"image": IMAGE, "command": COMMAND, "start": True, "engine": REMOTE},
        timeout=CREATE_TIMEOUT,
    )
    dt = time.perf_counter() - t0
    if resp.status_code != 201 or resp.json().get("status") != "running":
        raise base.BenchError(f"POST /containers on {REMOTE}: {resp.status_code} {resp.text[:300]}")
    cuid = str(resp.json()["cuid"])
    ctx.api_cuids.add(cuid)
    return cuid, dt


def _raw_remote_project(ctx: Ctx, template: dict[str, Any], cuid: str, name: str) -> Path:
    """Dockyard's document of a remote container, for another project (its own volume)."""
    text = json.dumps(template).replace(cuid, name)
    doc = json.loads(text)
    doc["services"]["app"]["labels"]["dockyard.managed"] = "false"
    doc["volumes"]["app"]["labels"]["dockyard.managed"] = "false"
    project_dir = ctx.raw_root / name
    project_dir.mkdir(mode=0o700, parents=True)
    (project_dir / "compose.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return project_dir


def bench_remote_create(ctx: Ctx, iterations: int, raw: list[tuple[str, Path]]) -> dict[str, Any]:
    admin = ctx.client()
    try:
        cuid, _ = _remote_create(admin, ctx)  # warm-up; its document is the raw side's
        text = (ctx.data_dir / "containers" / cuid / "compose.yaml").read_text()
        template = yaml.safe_load(text)
        if admin.delete(f"/containers/{cuid}", timeout=CREATE_TIMEOUT).status_code != 204:
            raise base.BenchError(f"DELETE /containers/{cuid} failed")
        ctx.api_cuids.discard(cuid)
        api_s: list[float] = []
        raw_s: list[float] = []
        for i in range(iterations):
            name = f"dybench-{ctx.root.name[-8:].lower()}-remote{i}"
            pdir = _raw_remote_project(ctx, template, cuid, name)
            raw.append((name, pdir))

            def raw_side(name: str = name, pdir: Path = pdir) -> None:
                up = _remote_compose(ctx, name, pdir, "up")
                raw_s.append(up + _remote_compose(ctx, name, pdir, "down"))
                raw.remove((name, pdir))

            def api_side() -> None:
                made, create = _remote_create(admin, ctx)
                t0 = time.perf_counter()
                if admin.delete(f"/containers/{made}", timeout=CREATE_TIMEOUT).status_code != 204:
                    raise base.BenchError(f"DELETE /containers/{made} failed")
                ctx.api_cuids.discard(made)
                api_s.append(create + time.perf_counter() - t0)

            for side in (api_side, raw_side) if i % 2 == 0 else (raw_side, api_side):
                side()
        api, rawf = summary(api_s), summary(raw_s)
        return {"api": api, "raw": rawf, "ratio": ratio(api["mean_ms"], rawf["mean_ms"])}
    finally:
        admin.close()


def bench_remote_upload(ctx: Ctx, megabytes: int, count: int) -> dict[str, Any]:
    admin = ctx.client()
    payload = ctx.root / "payload.bin"
    archive = ctx.root / "payload.zip"
    with payload.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1024 * 1024))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as packed:
        packed.write(payload, "payload.bin")
    try:
        cuid, _ = _remote_create(admin, ctx)
        api_s: list[float] = []
        cp_s: list[float] = []
        for i in range(count):

            def api_side() -> None:
                t0 = time.perf_counter()
                with archive.open("rb") as body:
                    resp = admin.post(
                        f"/containers/{cuid}/upload-zip", content=body, timeout=CREATE_TIMEOUT,
                        headers={"Content-Type": "application/zip"},
                    )  # fmt: skip
                if resp.status_code not in (200, 201):
                    raise base.BenchError(f"upload-zip: {resp.status_code} {resp.text[:300]}")
                api_s.append(time.perf_counter() - t0)

            def cp_side() -> None:
                from dockyard.domain.containers.compose_doc import container_name

                t0 = time.perf_counter()
                done = base.run_cmd(
                    ["docker", "-H", REMOTE_ADDR, "cp", str(payload),
                     f"{container_name(cuid)}:/app/payload.bin"],
                    timeout=COMPOSE_TIMEOUT,
                )  # fmt: skip
                if done.returncode != 0:
                    raise base.BenchError(f"docker cp: {done.stderr[-300:]}")
                cp_s.append(time.perf_counter() - t0)

            for side in (api_side, cp_side) if i % 2 == 0 else (cp_side, api_side):
                side()
        api, cp = summary(api_s), summary(cp_s)
        return {"api": api, "docker_cp": cp, "ratio": ratio(api["mean_ms"], cp["mean_ms"])}
    finally:
        admin.close()
        payload.unlink(missing_ok=True)
        archive.unlink(missing_ok=True)


def _start_second_engine() -> None:
    done = base.run_cmd(["bash", str(SCRIPT), "1"], timeout=300)
    if done.returncode != 0:
        raise base.BenchError(f"extra-engines.sh 1: {done.stderr[-600:]}")


def _add_second_engine(ctx: Ctx) -> None:
    with ctx.client() as admin:
        resp = admin.post("/engines", json={"id": REMOTE, "addr": REMOTE_ADDR})
        if resp.status_code != 201 or resp.json()["status"] != "healthy":
            raise base.BenchError(f"POST /engines {REMOTE}: {resp.status_code} {resp.text[:300]}")


def _remove_remote_leftovers(ctx: Ctx, raw: list[tuple[str, Path]]) -> None:
    for name, pdir in raw:
        try:
            _remote_compose(ctx, name, pdir, "down")
        except (base.BenchError, subprocess.SubprocessError) as exc:
            log(f"cleanup problem: {name}: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=2000, help="per case (1)")
    parser.add_argument("--requests", type=int, default=200, help="GET /cluster/info (2)")
    parser.add_argument("--remote-iterations", type=int, default=20, help="(3); 0: skip 3, 4")
    parser.add_argument("--upload-mb", type=int, default=100, help="(4)")
    parser.add_argument("--uploads", type=int, default=5, help="(4)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    ctx = new_ctx("dyengines-", network=NETWORK, keep_log=None)
    placement = bench_placement(args.decisions)
    remote: dict[str, Any] = {}
    raw: list[tuple[str, Path]] = []
    try:
        if args.remote_iterations:
            _start_second_engine()
        prepare(ctx, {}, image=None)
        log(f"server on {ctx.url}")
        if args.remote_iterations:
            _add_second_engine(ctx)
            remote["create"] = bench_remote_create(ctx, args.remote_iterations, raw)
            remote["upload"] = bench_remote_upload(ctx, args.upload_mb, args.uploads)
        cluster = bench_cluster_info(ctx, 10, args.requests)
    finally:
        if args.remote_iterations:  # first: cleanup removes the raw projects' folders
            _remove_remote_leftovers(ctx, raw)
        for problem in cleanup(ctx):
            log(f"cleanup problem: {problem}")
        if args.remote_iterations:  # last: the server's containers are gone by now
            base.run_cmd(["docker", "-H", REMOTE_ADDR, "network", "rm", NETWORK])

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
    if remote:
        _print_remote(remote, args)
    if args.json:
        figures = {
            "placement": placement,
            "cluster_info": cluster,
            "remote": remote,
            "targets": TARGETS,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _print_remote(remote: dict[str, Any], args: argparse.Namespace) -> None:
    create, upload = remote["create"], remote["upload"]
    limit = TARGETS["remote_create_ratio"]
    print(f"\n3. create+start+delete on a second engine (n = {args.remote_iterations})")
    print_rows(
        ["side", "mean ms", "p50 ms", "ratio", "target", "met"],
        [["API", f"{create['api']['mean_ms']:.1f}", f"{create['api']['p50_ms']:.1f}",
          f"{create['ratio']:.3f}", f"<= {limit:g}", yes(create["ratio"] <= limit)],
         ["raw Compose (DOCKER_HOST)", f"{create['raw']['mean_ms']:.1f}",
          f"{create['raw']['p50_ms']:.1f}", "", "", ""]],
    )  # fmt: skip
    limit = TARGETS["remote_upload_ratio"]
    print(f"\n4. {args.upload_mb} MB into /app on the second engine (n = {args.uploads})")
    print_rows(
        ["side", "mean ms", "p50 ms", "ratio", "target", "met"],
        [["POST upload-zip", f"{upload['api']['mean_ms']:.1f}",
          f"{upload['api']['p50_ms']:.1f}", f"{upload['ratio']:.3f}", f"<= {limit:g}",
          yes(upload["ratio"] <= limit)],
         ["docker -H ... cp", f"{upload['docker_cp']['mean_ms']:.1f}",
          f"{upload['docker_cp']['p50_ms']:.1f}", "", "", ""]],
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
