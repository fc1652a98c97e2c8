"""adapters/processes.py: output, exit codes, and no process left behind (real processes)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dockyard.adapters import processes

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _alive_in_group(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies awaiting a reaper are dead)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            alive.append(int(entry.name))
    return alive


async def _none_left(pgid: int) -> list[int]:
    """The group's processes once the kernel has finished them (a killed process closes
    its files, which ends the caller's wait, a moment before it turns zombie)."""
    for _ in range(500):
        alive = _alive_in_group(pgid)
        if not alive:
            return []
        await asyncio.sleep(0.01)
    return alive


async def test_output_and_exit_code_come_back() -> None:
    done = await processes.run(["sh", "-c", "echo out; echo err >&2; exit 3"], env=ENV, limit=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")


async def _group_of(pidfile: Path) -> int:
    while not pidfile.exists() or not pidfile.read_text().strip():
        await asyncio.sleep(0.01)
    return int(pidfile.read_text())


async def test_the_deadline_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; sleep 60 & sleep 60"
    with pytest.raises(TimeoutError):
        await processes.run(["sh", "-c", script], env=ENV, limit=0.5)
    assert await _none_left(await _group_of(pidfile)) == []


async def test_a_cancelled_caller_leaves_no_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; sleep 60 & sleep 60"
    task = asyncio.create_task(processes.run(["sh", "-c", script], env=ENV, limit=60))
    pgid = await _group_of(pidfile)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _none_left(pgid) == []
