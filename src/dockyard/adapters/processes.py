"""Child processes spawned from a thread, not by the event loop.

uvloop (uvicorn's loop when installed) spawns through libuv, which forks the whole
service on the loop's own thread: measured here, 8 ms per spawn at 50 MB of RSS and 24 ms
at 200 MB, during which no request is served. ``subprocess.Popen`` in a thread uses
``vfork`` (~1 ms at any size) and leaves the loop free. Every Compose call goes through
here (two per create + delete: docs/benchmarks.md, session 4).

The process runs in its own session; on the deadline, or when the caller is cancelled,
the whole group is killed and reaped before ``run`` returns or raises.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

T = TypeVar("T")
DRAIN_SECONDS = 5.0

# Each process in flight holds one thread while it runs (Compose calls are bounded by the
# services' own limits, far below this); a pool of its own so that file work queued on the
# default executor never waits behind a slow Compose.
_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="dockyard-process")


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run(
    argv: Sequence[str], *, env: Mapping[str, str], limit: float, cwd: str | None = None
) -> Finished:
    """Run ``argv`` to its end (stdin empty, output captured); ``TimeoutError`` after
    ``limit`` seconds, its process group killed. (The deadline is the thread's own
    ``communicate(timeout=)``: an ``asyncio.timeout`` cannot stop a thread.)"""
    proc = await _spawn(argv, env, cwd)
    talking = asyncio.ensure_future(_in_thread(partial(proc.communicate, timeout=limit)))
    try:
        stdout, stderr = await asyncio.shield(talking)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        await _in_thread(partial(_drain, proc))
        raise TimeoutError(f"{argv[0]} did not finish within {limit:.0f}s") from None
    except BaseException:  # cancelled: the thread still talks to it; kill, let it end
        _kill_group(proc)
        await asyncio.shield(asyncio.wait({talking}))
        raise
    return Finished(proc.returncode, stdout, stderr)


async def _spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None
) -> subprocess.Popen[bytes]:
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )

    spawning = asyncio.ensure_future(_in_thread(start))
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        # Cancelled while the thread spawned it: the process exists; end it, then go.
        proc = await spawning
        _kill_group(proc)
        await _in_thread(partial(_drain, proc))
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the whole process group (the program and what it spawned)."""
    if proc.returncode is None:  # not reaped yet: its pid is still its own
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _drain(proc: subprocess.Popen[bytes]) -> None:
    """After the kill: read the pipes to their end, close them, reap the process (a
    bounded wait: something outside the group may still hold a pipe open)."""
    try:
        proc.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=DRAIN_SECONDS)


async def _in_thread(call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
