"""File transfer benchmarks against the plain tools, in one run (``make bench-files``).

1. upload-zip of 100 MB (one big file, stored; one big file, deflated) and of 10,000
   small files, vs ``unzip -q`` of the same archive into a folder;
2. download-zip of those folders vs ``zip -r -q`` (same deflate level, 6);
3. download of a 100 MB file vs ``docker cp`` out of the container.

Each figure is the median of a few runs; the server's peak memory (VmHWM) is read before
and after, to show that transfers stream. Reuses bench/run.py's server and cleanup.
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
from harness.context import new_ctx
from harness.server import start_server
from harness.session import cleanup

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


def main() -> int:
    if os.geteuid() != 0:
        print("bench: run as root", file=sys.stderr)
        return 2
    for tool in ("zip", "unzip"):
        if shutil.which(tool) is None:
            subprocess.run(["apt-get", "install", "-y", "-qq", tool], check=True, timeout=300)
    ctx = new_ctx("dyfiles-")
    root = ctx.root
    results: dict[str, Any] = {}
    status = 0
    try:
        work = root / "work"
        work.mkdir()
        base.log("making 100 MB and 10,000-file inputs")
        zips = make_inputs(work)
        start_server(ctx)
        assert ctx.proc is not None
        with httpx.Client(base_url=ctx.url, auth=ctx.auth, timeout=600) as client:
            client.get("/auth/whoami")
            cuid, _ = api_create(client, ctx)
            rss_before = peak_rss_mb(ctx.proc.pid)
            counter = {"n": 0}
            for name, archive in zips.items():
                counter["n"] = 0
                out_dir = work / f"unzip-{name}"
                raw = timed(
                    lambda: subprocess.run(
                        ["unzip", "-q", "-o", str(archive), "-d", str(out_dir)],
                        check=True,
                        timeout=600,
                    ),
                    before=lambda: shutil.rmtree(out_dir, ignore_errors=True),
                )

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
                results[f"upload {name}"] = {
                    "api_s": api,
                    "raw_s": raw,
                    "ratio": api / raw,
                    "raw_tool": "unzip -q",
                    "target": TARGETS["upload_vs_unzip"],
                }
                base.log(f"upload {name}: {api:.3f}s vs unzip {raw:.3f}s")
                # download-zip of the folder just uploaded vs zip -r of the same files
                folder = f"/app/{name}-1"
                host_folder = ctx.data_dir / "containers" / cuid / "app" / f"{name}-1"
                out_zip = work / f"zip-{name}.zip"
                raw_zip = timed(
                    lambda: subprocess.run(
                        ["zip", "-r", "-q", "-6", str(out_zip), "."],
                        cwd=host_folder,
                        check=True,
                        timeout=600,
                    ),
                    before=lambda: out_zip.unlink(missing_ok=True),
                )

                api_zip = timed(
                    lambda: download_to(
                        client, f"/containers/{cuid}/download-zip", folder, work / "dl.zip"
                    )
                )
                results[f"download-zip {name}"] = {
                    "api_s": api_zip,
                    "raw_s": raw_zip,
                    "ratio": api_zip / raw_zip,
                    "raw_tool": "zip -r -q -6",
                    "target": TARGETS["download_zip_vs_zip"],
                }
                base.log(f"download-zip {name}: {api_zip:.3f}s vs zip {raw_zip:.3f}s")
            # single 100 MB file vs docker cp
            target = work / "cp.bin"
            name = f"{cuid}-app-1"
            raw_cp = timed(
                lambda: subprocess.run(
                    ["docker", "cp", f"{name}:/app/big_stored-1/big.bin", str(target)],
                    check=True,
                    timeout=600,
                ),
                before=lambda: target.unlink(missing_ok=True),
            )

            api_dl = timed(
                lambda: download_to(
                    client,
                    f"/containers/{cuid}/download",
                    "/app/big_stored-1/big.bin",
                    work / "dl.bin",
                )
            )
            results["download 100 MB file"] = {
                "api_s": api_dl,
                "raw_s": raw_cp,
                "ratio": api_dl / raw_cp,
                "raw_tool": "docker cp",
                "target": TARGETS["download_vs_docker_cp"],
            }
            base.log(f"download: {api_dl:.3f}s vs docker cp {raw_cp:.3f}s")
            results["server peak RSS MB"] = {
                "before": rss_before,
                "after": peak_rss_mb(ctx.proc.pid),
            }
    except Exception as exc:
        base.log(f"FAILED: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        problems = cleanup(ctx)
        for problem in problems:
            base.log(f"cleanup: {problem}")
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
    base.RESULTS.mkdir(parents=True, exist_ok=True)
    (base.RESULTS / "files.json").write_text(json.dumps(results, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
