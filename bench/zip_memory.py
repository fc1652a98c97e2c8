"""Peak memory of download-zip over a folder of many small files (issue 9, files #1).

For each file count, a flat folder of small files is made once; then a fresh Python
process builds the download-zip body exactly as the server does (``Downloads.zip`` over a
``HostTree``: the size pass, the walk, the ZIP writer) and reads it to the end, and prints
how far its peak RSS (``ru_maxrss``) rose above its RSS before the download, with the
wall and CPU (user + system) time it took: on a shared machine the CPU time is the figure
to compare. A fresh process per figure keeps one run's freed-but-kept memory out of the
next.

    .venv/bin/python bench/zip_memory.py [10000 100000 ...]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIB = 1024


def rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // KIB


def measure(app: Path) -> dict[str, float]:
    """Runs in the child: one download-zip of ``app``, read to the end."""
    import asyncio

    from dockyard.domain.files.downloads import Downloads
    from dockyard.domain.files.hostfs import HostTree
    from dockyard.domain.files.paths import parse

    downloads = Downloads(None, app.parent / "tmp", lambda: 1 << 40)  # type: ignore[arg-type]
    tree = HostTree(str(app), os.getuid(), os.getgid())
    before = rss_kib()
    started, cpu = time.perf_counter(), cpu_seconds()
    body = asyncio.run(downloads.zip("bench", tree, parse("/app")))
    sent = sum(len(chunk) for chunk in body.chunks)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rss_before_mib": before / KIB,
        "peak_growth_mib": max(0, peak - before) / KIB,
        "zip_mib": sent / KIB / KIB,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_folder(app: Path, count: int) -> None:
    app.mkdir(parents=True)
    for n in range(count):
        (app / f"file-{n:06d}.txt").write_bytes(b"small file %d\n" % n)


def main(counts: list[int]) -> None:
    for count in counts:
        work = Path(tempfile.mkdtemp(prefix="zip-memory-"))
        try:
            make_folder(work / "app", count)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(work / "app")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            figures = json.loads(out)
            print(
                f"{count:>7} files: peak RSS +{figures['peak_growth_mib']:.1f} MiB "
                f"(ZIP {figures['zip_mib']:.1f} MiB in {figures['seconds']:.1f} s, "
                f"{figures['cpu_seconds']:.1f} s CPU)"
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(Path(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
