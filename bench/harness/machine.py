"""What the figures were measured on: the machine, its engine, the commit, its load."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from harness.base import REPO, run_cmd
from harness.context import Ctx


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
