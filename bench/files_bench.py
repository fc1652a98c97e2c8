"""File transfer benchmarks against the plain tools, in one run (``make bench-files``).

1. upload-zip of 100 MB (one big file, stored; one big file, deflated) and of 10,000
   small files, vs ``unzip -q`` of the same archive into a folder;
2. download-zip of those folders vs ``zip -r -q`` (same deflate level, 6);
3. download of a 100 MB file vs ``docker cp`` out of the container.

Each figure is the median of a few runs; the server's peak memory (VmHWM) is read before
and after, to show that transfers stream. Uses bench/harness for the server and clean-up.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base
from harness.containers import api_create
from harness.context import Ctx, new_ctx
from harness.session import cleanup, prepare

MB = 1024 * 1024
REPEAT = 3
TARGETS = {"upload_vs_unzip": 1.5, "download_zip_vs_zip": 1.5, "download_vs_docker_cp": 1.0}


def timed(
    fn: Callable[[], Any], repeat: int = REPEAT, before: Callable[[], Any] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def download_to(client: httpx.Client, url: str, path: str, dest: Path) -> None:
    """Stream a download to a file, as a client that keeps nothing in memory would."""
    with client.stream("GET", url, params={"path": path}) as r:
        r.raise_for_status()
        with dest.open("wb") as out:
            for chunk in r.iter_bytes(MB):
                out.write(chunk)


def make_inputs(work: Path) -> dict[str, Path]:
    src = work / "src"
    (src / "big").mkdir(parents=True)
    (src / "text").mkdir()
    (src / "small").mkdir()
    (src / "big" / "big.bin").write_bytes(os.urandom(100 * MB))
    line = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(2000))
    with (src / "text" / "big.txt").open("wb") as handle:
        while handle.tell() < 100 * MB:
            handle.write(line)
    for i in range(10_000):
        sub = src / "small" / f"d{i // 500:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:05d}.txt").write_bytes(b"%d " % i * 100)
    zips = {}
    for name, folder, method in (
        ("big_stored", "big", zipfile.ZIP_STORED),
        ("big_deflated", "text", zipfile.ZIP_DEFLATED),
        ("small_10k", "small", zipfile.ZIP_DEFLATED),
    ):
        path = work / f"{name}.zip"
        with zipfile.ZipFile(path, "w", method, compresslevel=6) as zf:
            for file in sorted((src / folder).rglob("*")):
                if file.is_file():
                    zf.write(file, file.relative_to(src / folder))
        zips[name] = path
    return zips


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def compared(api: float, raw: float, tool: str, target: float) -> dict[str, Any]:
    return {"api_s": api, "raw_s": raw, "ratio": api / raw, "raw_tool": tool, "target": target}


def bench_upload(
    client: httpx.Client, cuid: str, name: str, archive: Path, work: Path
) -> dict[str, Any]:
    """upload-zip vs unzip of the same archive; the uploads land in /app/<name>-<n>."""
    out_dir = work / f"unzip-{name}"
    raw = timed(
        lambda: subprocess.run(
            ["unzip", "-q", "-o", str(archive), "-d", str(out_dir)], check=True, timeout=600
        ),
        before=lambda: shutil.rmtree(out_dir, ignore_errors=True),
    )
    counter = {"n": 0}

    def upload() -> None:
        counter["n"] += 1
        with archive.open("rb") as body:
            r = client.post(
                f"/containers/{cuid}/upload-zip",
                params={"path": f"/app/{name}-{counter['n']}"},
                content=body,
                headers={"Content-Type": "application/zip"},
            )
        r.raise_for_status()

    api = timed(upload)
    base.log(f"upload {name}: {api:.3f}s vs unzip {raw:.3f}s")
    return compared(api, raw, "unzip -q", TARGETS["upload_vs_unzip"])


def bench_download_zip(
    client: httpx.Client, ctx: Ctx, cuid: str, name: str, work: Path
) -> dict[str, Any]:
    """download-zip of the folder just uploaded vs zip -r of the same files."""
    host_folder = ctx.data_dir / "containers" / cuid / "app" / f"{name}-1"
    out_zip = work / f"zip-{name}.zip"
    raw = timed(
        lambda: subprocess.run(
            ["zip", "-r", "-q", "-6", str(out_zip), "."], cwd=host_folder, check=True, timeout=600
        ),
        before=lambda: out_zip.unlink(missing_ok=True),
    )
    api = timed(
        lambda: download_to(
            client, f"/containers/{cuid}/download-zip", f"/app/{name}-1", work / "dl.zip"
        )
    )
    base.log(f"download-zip {name}: {api:.3f}s vs zip {raw:.3f}s")
    return compared(api, raw, "zip -r -q -6", TARGETS["download_zip_vs_zip"])


def bench_download(client: httpx.Client, cuid: str, work: Path) -> dict[str, Any]:
    """The single 100 MB file vs docker cp."""
    target = work / "cp.bin"
    path = "/app/big_stored-1/big.bin"
    raw = timed(
        lambda: subprocess.run(
            ["docker", "cp", f"{cuid}-app-1:{path}", str(target)], check=True, timeout=600
        ),
        before=lambda: target.unlink(missing_ok=True),
    )
    api = timed(lambda: download_to(client, f"/containers/{cuid}/download", path, work / "dl.bin"))
    base.log(f"download: {api:.3f}s vs docker cp {raw:.3f}s")
    return compared(api, raw, "docker cp", TARGETS["download_vs_docker_cp"])


def measure(ctx: Ctx, work: Path, results: dict[str, Any]) -> None:
    base.log("making 100 MB and 10,000-file inputs")
    zips = make_inputs(work)
    prepare(ctx, {})  # also notes whether the network was there, for the clean-up
    assert ctx.proc is not None
    with httpx.Client(base_url=ctx.url, auth=ctx.auth, timeout=600) as client:
        cuid, _ = api_create(client, ctx)
        rss_before = peak_rss_mb(ctx.proc.pid)
        for name, archive in zips.items():
            results[f"upload {name}"] = bench_upload(client, cuid, name, archive, work)
            results[f"download-zip {name}"] = bench_download_zip(client, ctx, cuid, name, work)
        results["download 100 MB file"] = bench_download(client, cuid, work)
        results["server peak RSS MB"] = {"before": rss_before, "after": peak_rss_mb(ctx.proc.pid)}


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'benchmark':32} {'dockyard':>10} {'raw':>10} {'ratio':>7} {'target':>7}  raw tool")
    for key, row in results.items():
        if "ratio" in row:
            met = "ok" if row["ratio"] <= row["target"] else "MISSED"
            print(
                f"{key:32} {row['api_s']:>9.3f}s {row['raw_s']:>9.3f}s {row['ratio']:>7.2f} "
                f"{'≤' + str(row['target']):>7}  {row['raw_tool']} {met}"
            )
    if "server peak RSS MB" in results:
        rss = results["server peak RSS MB"]
        print(
            f"server peak RSS: {rss['before']:.0f} MB before, {rss['after']:.0f} MB after "
            "(400 MB of archives and files moved)"
        )


def main() -> int:
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 2
    for tool in ("zip", "unzip"):
        if shutil.which(tool) is None:
            subprocess.run(["apt-get", "install", "-y", "-qq", tool], check=True, timeout=300)
    ctx = new_ctx("dyfiles-")
    results: dict[str, Any] = {}
    status = 0
    try:
        work = ctx.root / "work"
        work.mkdir()
        measure(ctx, work, results)
    except Exception as exc:
        base.log(f"FAILED: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        for problem in cleanup(ctx):
            base.log(f"cleanup: {problem}")
    print_table(results)
    base.RESULTS.mkdir(parents=True, exist_ok=True)
    (base.RESULTS / "files.json").write_text(json.dumps(results, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
