"""What a job's work sees while it runs: ``JobRun`` (status, steps, layers, log, result)
and ``JobFailed`` (how work ends its job ``failed`` with a step)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from dockyard.domain.images.joblogs import JobLog
from dockyard.domain.images.models import Job, JobError, JobRepository, JobStatus
from dockyard.domain.images.ports import Progress, ProgressKind

PROGRESS_SAVE_INTERVAL = 1.0  # steps and layer progress reach the store at most this often
T = TypeVar("T")


@asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """An engine stream closed however its reader leaves (an error, a cancel, the
    deadline): closing it closes the connection, which cancels the work on the engine."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class JobFailed(Exception):
    """Work ends its job ``failed`` with this error (already written to its log)."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


class JobRun:
    """One running job, for its work: every change is kept in the job (which reads of a
    running job answer from) and saved to the store, layer progress at most once a
    second."""

    def __init__(self, job: Job, logfile: JobLog, repo: JobRepository) -> None:
        self.job = job
        self._log = logfile
        self._repo = repo
        self.last_step: str | None = None
        self._saved_at = 0.0

    @property
    def id(self) -> str:
        return self.job.id

    async def save(self) -> None:
        self._saved_at = time.monotonic()
        # Shielded: a cancel while the row is written never leaves the write half done.
        await asyncio.shield(self._repo.save(self.job))

    async def set_status(self, status: JobStatus) -> None:
        self.job.status = status
        await self.save()

    def mask(self, secret: str) -> None:
        """A secret this job uses (a registry password): never written to its log."""
        self._log.mask(secret)

    async def write(self, text: str) -> None:
        await self._log.write(text)

    async def step(self, step: int | None, total: int | None, text: str) -> None:
        """A build step began: ``Step 3/4 : RUN make`` in the log, and the job's step."""
        self.job.step = step
        self.job.total_steps = total
        self.last_step = f"Step {step}/{total} : {text}" if step is not None else text
        await self.write(self.last_step)
        # Readers of a running job see it in memory; the store gets the step at most once
        # a PROGRESS_SAVE_INTERVAL (a durable commit per step was ~5 % of a small build).
        if time.monotonic() - self._saved_at >= PROGRESS_SAVE_INTERVAL:
            await self.save()

    async def layer(self, progress: Progress) -> None:
        if progress.layer is None:
            return
        entry: dict[str, Any] = self.job.progress.setdefault(progress.layer, {})
        if progress.text:
            entry["status"] = progress.text
        if progress.current is not None:
            entry["current"] = progress.current
        if progress.total is not None:
            entry["total"] = progress.total
        if time.monotonic() - self._saved_at >= PROGRESS_SAVE_INTERVAL:
            await self.save()

    async def fail(self, kind: str, code: str, message: str, *, step: str | None = None) -> None:
        """Write the error to the log and end the job ``failed`` (raises ``JobFailed``)."""
        await self.write(f"ERROR: {message}")
        raise JobFailed(JobError(kind, code, message, step or self.last_step))

    async def follow(self, progress: Progress) -> None:
        """The common part of a build, pull or push stream: steps, lines and layers."""
        if progress.kind is ProgressKind.STEP:
            await self.step(progress.step, progress.total, progress.text)
        elif progress.kind in (ProgressKind.LOG, ProgressKind.STATUS):
            await self.write(progress.text)
        elif progress.kind is ProgressKind.LAYER:
            await self.layer(progress)
