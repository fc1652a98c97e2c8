"""Resource samples of containers: from their cgroup files when the engine is local (a few
small reads, microseconds), or from the engine's one-shot stats (a remote engine; about
a second) turned into the same ``ResourceSample``.

Where a container's cgroup lives depends on the cgroup version and the engine's driver:

    v1, cgroupfs   /sys/fs/cgroup/<controller>/docker/<id>/
    v1, systemd    /sys/fs/cgroup/<controller>/system.slice/docker-<id>.scope/
    v2, cgroupfs   /sys/fs/cgroup/docker/<id>/
    v2, systemd    /sys/fs/cgroup/system.slice/docker-<id>.scope/

and, failing those, ``/proc/<pid>/cgroup`` names it. Network counters are not in a
cgroup: they are the container's network namespace's, read from ``/proc/<pid>/net/dev``.
Memory "used" is what ``docker stats`` shows: usage minus the inactive page cache.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.domain.ports import ContainerProcess, ResourceSample

_V1_CONTROLLERS = {
    "cpu": ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"),
    "memory": ("memory",),
    "pids": ("pids",),
    "blkio": ("blkio",),
}
_MAX_CACHED = 4096


@dataclass(frozen=True)
class CgroupPaths:
    version: int
    cpu: Path | None
    memory: Path
    pids: Path | None
    blkio: Path | None


class CgroupReader:
    """``ResourceReader`` over the host's cgroup and proc files (a local engine only)."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc")) -> None:
        self._root = root
        self._proc = proc
        self._v2 = (root / "cgroup.controllers").exists()
        self._paths: dict[str, CgroupPaths] = {}
        self._mem_total: int | None = None

    async def read(self, procs: Sequence[ContainerProcess]) -> list[ResourceSample | None]:
        if not procs:
            return []
        # One hop to a thread for the whole batch: the reads themselves take microseconds.
        return await asyncio.to_thread(self.read_now, procs)

    def read_now(self, procs: Sequence[ContainerProcess]) -> list[ResourceSample | None]:
        return [self._sample(proc) for proc in procs]

    # -- where ---------------------------------------------------------------------

    def locate(self, proc: ContainerProcess) -> CgroupPaths | None:
        found = self._paths.get(proc.container_id)
        if found is not None:
            return found
        found = self._find_v2(proc) if self._v2 else self._find_v1(proc)
        if found is not None:
            if len(self._paths) >= _MAX_CACHED:
                self._paths.clear()
            self._paths[proc.container_id] = found
        return found

    def _candidates(self, cid: str) -> list[str]:
        return [f"docker/{cid}", f"system.slice/docker-{cid}.scope"]

    def _proc_cgroups(self, pid: int) -> dict[str, str]:
        """controller -> path from /proc/<pid>/cgroup ("" for the v2 unified line)."""
        if pid <= 0:
            return {}
        try:
            text = (self._proc / str(pid) / "cgroup").read_text()
        except OSError:
            return {}
        out: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            for controller in parts[1].split(",") if parts[1] else [""]:
                out[controller] = parts[2]
        return out

    def _find_v1(self, proc: ContainerProcess) -> CgroupPaths | None:
        from_proc: dict[str, str] | None = None
        found: dict[str, Path | None] = {}
        for kind, mounts in _V1_CONTROLLERS.items():
            found[kind] = None
            for mount in mounts:
                base = self._root / mount
                if not base.is_dir():
                    continue
                for rel in self._candidates(proc.container_id):
                    if (base / rel).is_dir():
                        found[kind] = base / rel
                        break
                if found[kind] is None:
                    if from_proc is None:
                        from_proc = self._proc_cgroups(proc.pid)
                    named = from_proc.get(mount.split(",")[0]) or from_proc.get(kind)
                    if named and named != "/" and (base / named.lstrip("/")).is_dir():
                        found[kind] = base / named.lstrip("/")
                if found[kind] is not None:
                    break
        memory = found["memory"]
        if memory is None:
            return None
        return CgroupPaths(1, found["cpu"], memory, found["pids"], found["blkio"])

    def _find_v2(self, proc: ContainerProcess) -> CgroupPaths | None:
        rels = self._candidates(proc.container_id)
        unified = self._proc_cgroups(proc.pid).get("")
        if unified and unified != "/":
            rels.append(unified.lstrip("/"))
        for rel in rels:
            path = self._root / rel
            if (path / "memory.current").exists():
                return CgroupPaths(2, path, path, path, path)
        return None

    # -- what ----------------------------------------------------------------------

    def _sample(self, proc: ContainerProcess) -> ResourceSample | None:
        paths = self.locate(proc)
        if paths is None:
            return None
        try:
            if paths.version == 1:
                cpu = _int(paths.cpu / "cpuacct.usage") if paths.cpu else None
                clock = time.monotonic_ns()
                usage = _int(paths.memory / "memory.usage_in_bytes", strict=True)
                stat = _flat_keyed(paths.memory / "memory.stat")
                inactive = stat.get("total_inactive_file", 0)
                limit = _int(paths.memory / "memory.limit_in_bytes")
                blk = _blkio_v1(paths.blkio) if paths.blkio else (None, None)
            else:
                cpu_stat = _flat_keyed(paths.memory / "cpu.stat")
                cpu = cpu_stat["usage_usec"] * 1000 if "usage_usec" in cpu_stat else None
                clock = time.monotonic_ns()
                usage = _int(paths.memory / "memory.current", strict=True)
                stat = _flat_keyed(paths.memory / "memory.stat")
                inactive = stat.get("inactive_file", 0)
                limit = _int(paths.memory / "memory.max")
                blk = _io_v2(paths.memory / "io.stat")
        except FileNotFoundError:
            # The cgroup went away (the container stopped or was recreated).
            self._paths.pop(proc.container_id, None)
            return None
        pids = _int(paths.pids / "pids.current") if paths.pids else None
        rx, tx = self._net(proc.pid)
        mem_total = self.mem_total()
        if limit is None or (mem_total and limit > mem_total):
            limit = mem_total  # no limit: the host's memory, as `docker stats` shows
        used = None if usage is None else max(usage - inactive, 0)
        return ResourceSample(
            source="cgroup",
            clock_ns=clock,
            at=datetime.now(UTC),
            cpu_ns=cpu,
            online_cpus=os.cpu_count(),
            memory_used=used,
            memory_limit=limit,
            net_rx=rx,
            net_tx=tx,
            blk_read=blk[0],
            blk_write=blk[1],
            pids=pids,
        )

    def _net(self, pid: int) -> tuple[int | None, int | None]:
        if pid <= 0:
            return None, None
        try:
            return parse_net_dev((self._proc / str(pid) / "net" / "dev").read_text())
        except OSError:
            return None, None

    def mem_total(self) -> int | None:
        if self._mem_total is None:
            try:
                for line in (self._proc / "meminfo").read_text().splitlines():
                    if line.startswith("MemTotal:"):
                        self._mem_total = int(line.split()[1]) * 1024
                        break
            except (OSError, ValueError, IndexError):
                return None
        return self._mem_total


def _int(path: Path, *, strict: bool = False) -> int | None:
    """An integer file; "max" (v2's no limit) and unreadable files are None."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        if strict:
            raise
        return None
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _flat_keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat)."""
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _blkio_v1(path: Path) -> tuple[int | None, int | None]:
    # The engine reads the CFQ file first and the throttle one when the first is empty.
    for name in ("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"):
        try:
            text = (path / name).read_text()
        except OSError:
            continue
        result = parse_blkio_v1(text)
        if result is not None:
            return result
    return 0, 0


def parse_blkio_v1(text: str) -> tuple[int, int] | None:
    """``8:0 Read 4096`` lines summed over devices; None when there is no device line."""
    read = write = 0
    seen = False
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        seen = True
        op = parts[1].lower()
        if op == "read":
            read += int(parts[2])
        elif op == "write":
            write += int(parts[2])
    return (read, write) if seen else None


def _io_v2(path: Path) -> tuple[int | None, int | None]:
    try:
        return parse_io_v2(path.read_text())
    except OSError:
        return None, None


def parse_io_v2(text: str) -> tuple[int, int]:
    """``8:0 rbytes=1 wbytes=2 rios=…`` lines summed over devices."""
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def parse_net_dev(text: str) -> tuple[int, int]:
    """Received and transmitted bytes over every interface but loopback."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == "lo" or not rest:
            continue
        fields = rest.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


# -- the engine's stats ------------------------------------------------------------------


def _engine_time(raw: str | None) -> tuple[datetime, int] | None:
    """The engine's RFC 3339 time with nanoseconds, as a datetime and epoch nanoseconds."""
    if not raw or raw.startswith("0001-01-01"):
        return None
    head, _, frac = raw.rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())[:9].ljust(9, "0")
    at = datetime.fromisoformat(head + "+00:00")
    nanos = int(at.timestamp()) * 1_000_000_000 + int(digits)
    return at.replace(microsecond=int(digits[:6])), nanos


def sample_from_stats(data: dict[str, Any]) -> ResourceSample | None:
    """``GET /containers/{id}/stats?stream=false&one-shot=true`` as a sample; None when
    the container does not run (the engine then answers with a zero ``read`` time)."""
    when = _engine_time(data.get("read"))
    if when is None:
        return None
    cpu_stats = data.get("cpu_stats") or {}
    usage = cpu_stats.get("cpu_usage") or {}
    cpu = usage.get("total_usage")
    online = cpu_stats.get("online_cpus") or len(usage.get("percpu_usage") or []) or None
    memory = data.get("memory_stats") or {}
    stats = memory.get("stats") or {}
    used = memory.get("usage")
    if used is not None:
        inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
        used = max(int(used) - int(inactive), 0)
    rx = tx = None
    networks = data.get("networks")
    if isinstance(networks, dict):
        rx = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
        tx = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
    read = write = 0
    for row in (data.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(row.get("op", "")).lower()
        if op == "read":
            read += int(row.get("value") or 0)
        elif op == "write":
            write += int(row.get("value") or 0)
    return ResourceSample(
        source="engine",
        clock_ns=when[1],
        at=when[0],
        cpu_ns=int(cpu) if cpu is not None else None,
        online_cpus=int(online) if online else None,
        memory_used=used,
        memory_limit=memory.get("limit"),
        net_rx=rx,
        net_tx=tx,
        blk_read=read,
        blk_write=write,
        pids=(data.get("pids_stats") or {}).get("current"),
    )
