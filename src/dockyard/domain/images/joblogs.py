"""The log of a build or pull: one file per job under ``JOBS_DIR``, bounded, followable.

A job's log is written while it runs and kept after it ends. It is bounded by
``BUILD_LOG_MAX_BYTES``: the head is kept (the first error is usually the one that
matters) and one line says where it was cut. A follower reads the file from its first
byte and then waits for more until the job closes its log, so a client that joins late
sees the whole log too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from dockyard.domain.observe.streams import LeasedStream, SessionLimiter

READ_CHUNK = 64 * 1024


class JobLog:
    """The open log of one running job; secrets given to it are masked in every line."""

    def __init__(self, path: Path, max_bytes: int, secrets: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.truncated = False
        self.closed = False
        self.changed = asyncio.Event()
        self._secrets = sorted(secrets, key=len, reverse=True)
        self._lock = asyncio.Lock()

    async def write(self, text: str) -> None:
        """Append ``text`` (a newline is added when it has none)."""
        if self.truncated or self.closed or not text:
            return
        for secret in self._secrets:
            text = text.replace(secret, "***")
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace")
        room = self.max_bytes - self.size
        if len(data) > room:
            data = data[: max(room, 0)]
            data += f"\n[log truncated: it is longer than {self.max_bytes} bytes]\n".encode()
            self.truncated = True
        async with self._lock:  # appends in order, one thread hop each
            await asyncio.to_thread(_append, self.path, data)
            self.size += len(data)
        self._wake()

    def mask(self, secret: str) -> None:
        """Mask ``secret`` in every line written from now on."""
        if secret and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class JobLogs:
    """Every job's log file, and the logs of the jobs that run now."""

    def __init__(self, directory: Path, max_bytes: int, *, follow_max: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.follows = SessionLimiter("build log follow", total=follow_max)
        self._open: dict[str, JobLog] = {}

    def path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.log"

    async def create(self, job_id: str, secrets: frozenset[str] = frozenset()) -> JobLog:
        """The (empty) log of a new job, open until ``close``."""
        path = self.path(job_id)
        await asyncio.to_thread(_create, path)
        log = JobLog(path, self.max_bytes, secrets)
        self._open[job_id] = log
        return log

    def close(self, job_id: str) -> None:
        log = self._open.pop(job_id, None)
        if log is not None:
            log.close()

    async def append_closed(self, job_id: str, text: str) -> None:
        """A line for the log of a job that no longer runs (interrupted by a restart)."""
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(_append, self.path(job_id), (text + "\n").encode())

    def stream(self, job_id: str, *, follow: bool) -> LeasedStream[bytes]:
        """The log from its first byte; with ``follow``, then what is written until the
        job ends. A follow holds one of the ``follow_max`` leases while it is open."""
        lease = self.follows.acquire() if follow and job_id in self._open else None
        return LeasedStream(self._read(job_id, follow), lease)

    async def _read(self, job_id: str, follow: bool) -> AsyncIterator[bytes]:
        path = self.path(job_id)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            return
        try:
            while True:
                log = self._open.get(job_id)
                # Both taken before the read: a write or the close after it sets this
                # very event, and a log closed before it has all its bytes in the file.
                ended = log is None or log.closed
                changed = log.changed if log is not None else None
                chunk = await asyncio.to_thread(handle.read, READ_CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not follow or ended or changed is None:
                    return
                await changed.wait()
        finally:
            await asyncio.to_thread(handle.close)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
