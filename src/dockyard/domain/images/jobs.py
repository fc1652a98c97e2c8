"""Jobs: builds, pulls and hub redeploys (SPEC §6), queued, run a few at a time,
watched, cancelled.

A job is ``queued`` until one of ``BUILDS_MAX_RUNNING`` slots is free, then runs its
work (``building`` → ``pushing``, or ``pulling``) under the ``BUILD_TIMEOUT`` deadline,
and ends ``succeeded``, ``failed`` (with the error and the step that failed) or
``cancelled``. Past ``BUILDS_PER_ACCOUNT`` jobs of one account, or ``BUILDS_MAX_QUEUED``
waiting jobs in all, a new one is 429 with ``Retry-After``.

Cancelling a running job cancels its task: the work's engine stream is closed on the
way out (``aclosing``), which cancels the build, pull or push on the engine. One process
owns a ``DATA_DIR``, so a job still active in the store that another process (a previous
run) started was interrupted: ``recover`` marks it failed ``interrupted`` at start-up,
and ``stop`` does the same to the jobs it cancels at shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.images.joblogs import JobLog, JobLogs
from dockyard.domain.images.jobreads import JobReads
from dockyard.domain.images.models import (
    Job,
    JobError,
    JobKind,
    JobRepository,
    JobStatus,
)
from dockyard.domain.images.running import JobFailed, JobRun
from dockyard.domain.models import utcnow
from dockyard.domain.recording import SYSTEM, Change, NullRecorder, Recorder
from dockyard.errors import DockyardError, RateLimitedError

log = structlog.get_logger("dockyard.jobs")

RETRY_AFTER = 10  # seconds a refused job is told to wait


@dataclass(frozen=True)
class QueueLimits:
    max_running: int = 2
    max_queued: int = 20
    per_account: int = 4
    timeout: float = 1800.0


Work = Callable[[JobRun], Awaitable[None]]
Cleanup = Callable[[], Awaitable[None]]


@dataclass
class _Live:
    job: Job
    work: Work
    cleanup: Cleanup | None
    logfile: JobLog
    task: asyncio.Task[None] | None = None
    began: bool = False  # its task has run its first step
    running: bool = False
    cancel: JobStatus | None = None  # why the task was cancelled: CANCELLED or FAILED


class JobService(JobReads):
    """The queue and the runner of every job (the reads: ``JobReads``)."""

    def __init__(
        self,
        repo: JobRepository,
        logs: JobLogs,
        limits: QueueLimits,
        *,
        recorder: Recorder | None = None,
    ) -> None:
        self._repo = repo
        self.logs = logs
        self.limits = limits
        self._recorder = recorder or NullRecorder()
        self.instance = secrets.token_hex(8)
        self._slots = asyncio.Semaphore(limits.max_running)
        self._live: dict[str, _Live] = {}
        self._last_stamp = utcnow()
        self._stopping = False

    @staticmethod
    def new_id() -> str:
        return "j" + uuid.uuid4().hex

    # -- the queue -------------------------------------------------------------------

    def check_room(self, owner: str) -> None:
        """429 with Retry-After when the account or the queue has no room for one more."""
        if self._stopping:
            raise RateLimitedError(
                "the service is stopping", retry_after=RETRY_AFTER, code="SHUTTING_DOWN"
            )
        mine = sum(1 for live in self._live.values() if live.job.owner == owner)
        if mine >= self.limits.per_account:
            raise RateLimitedError(
                f"an account may have {self.limits.per_account} builds and pulls queued or"
                " running at once; retry when one has ended",
                retry_after=RETRY_AFTER,
                code="TOO_MANY_JOBS",
                details={"scope": "account", "limit": self.limits.per_account},
            )
        waiting = sum(1 for live in self._live.values() if not live.running)
        free = max(0, self.limits.max_running - (len(self._live) - waiting))
        if waiting - free >= self.limits.max_queued:
            raise RateLimitedError(
                f"the build queue is full ({self.limits.max_queued} waiting); retry later",
                retry_after=RETRY_AFTER,
                code="QUEUE_FULL",
                details={"scope": "queue", "limit": self.limits.max_queued},
            )

    async def submit(
        self,
        job: Job,
        work: Work,
        *,
        cleanup: Cleanup | None = None,
        secrets: frozenset[str] = frozenset(),
        insert: Callable[[Job], Awaitable[None]] | None = None,
    ) -> Job:
        """Queue ``job`` (made with ``new_job``); ``work`` runs when a slot is free and
        ``cleanup`` once it has ended, however it ended. ``secrets`` are masked in its log.
        ``insert`` stores the job in place of the repository's insert (a hub redeploy
        stores its delivery in the same transaction); if it raises, nothing is queued."""
        try:
            self.check_room(job.owner)
            job.instance = self.instance
            job.created_at = self._stamp()
            logfile = await self.logs.create(job.id, secrets)
            await (insert or self._repo.insert)(job)
        except BaseException:
            self.logs.close(job.id)
            if cleanup is not None:
                await cleanup()
            raise
        live = _Live(job, work, cleanup, logfile)
        self._live[job.id] = live
        self._record(job, "build.queued", actor=job.owner)
        # A context of its own: the job outlives the request that queued it.
        live.task = asyncio.create_task(
            self._run(live), name=f"job:{job.id}", context=contextvars.Context()
        )
        return self._copy(job)

    def new_job(self, kind: JobKind, owner: str, *, tags: list[str], spec: dict[str, Any]) -> Job:
        return Job(
            id=self.new_id(), kind=kind, owner=owner, instance=self.instance, tags=tags, spec=spec
        )

    def _stamp(self) -> datetime:
        now = utcnow()
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    # -- the runner ----------------------------------------------------------------------

    async def _run(self, live: _Live) -> None:
        live.began = True
        try:
            async with self._slots:
                live.running = True
                await self._execute(live)
        except asyncio.CancelledError:  # cancelled while still queued
            if not live.running:
                await self._end_cancelled(live)
        except Exception as exc:  # the store failed while ending it: logged, not lost
            log.error("job.end_failed", job_id=live.job.id, exc_type=type(exc).__name__)
        finally:
            await self._release(live)

    async def _end_cancelled(self, live: _Live) -> None:
        await self._end(live, live.cancel or JobStatus.CANCELLED, self._cancel_error(live))

    async def _settle(self, live: _Live) -> None:
        """After its task is done: a task cancelled before its first step ran nothing,
        not even its own ending."""
        if live.task is not None:
            await asyncio.wait({live.task})
        if not live.began and live.job.id in self._live:
            try:
                await self._end_cancelled(live)
            finally:
                await self._release(live)

    async def _release(self, live: _Live) -> None:
        job = live.job
        if self._live.pop(job.id, None) is None:
            return
        self.logs.close(job.id)
        if live.cleanup is not None:
            try:
                await asyncio.shield(live.cleanup())
            except Exception as exc:
                log.warning("job.cleanup_failed", job_id=job.id, exc_type=type(exc).__name__)

    async def _execute(self, live: _Live) -> None:
        job = live.job
        job.started_at = utcnow()
        run = JobRun(job, live.logfile, self._repo)
        self._record(job, "build.started")
        deadline = asyncio.timeout(self.limits.timeout)
        try:
            async with deadline:
                await live.work(run)
        except TimeoutError:
            if not deadline.expired():
                raise
            message = f"the job did not end within its deadline of {self.limits.timeout:g} s"
            await run.write(f"ERROR: {message}")
            error = JobError("timeout", "BUILD_TIMEOUT", message, run.last_step)
            await self._end(live, JobStatus.FAILED, error)
        except JobFailed as failed:
            await self._end(live, JobStatus.FAILED, failed.error)
        except DockyardError as exc:
            await run.write(f"ERROR: {exc.message}")
            error = JobError(exc.kind, exc.code, exc.message, run.last_step)
            await self._end(live, JobStatus.FAILED, error)
        except asyncio.CancelledError:
            await self._end(live, live.cancel or JobStatus.CANCELLED, self._cancel_error(live))
        except Exception as exc:
            log.exception("job.crashed", job_id=job.id, exc_type=type(exc).__name__)
            error = JobError("internal_error", "INTERNAL", "the job failed inside Dockyard")
            await self._end(live, JobStatus.FAILED, error)
        else:
            await self._end(live, JobStatus.SUCCEEDED, None)

    def _cancel_error(self, live: _Live) -> JobError | None:
        if live.cancel is JobStatus.FAILED:
            return JobError("unavailable", "interrupted", "the service stopped during the job")
        return None

    async def _end(self, live: _Live, status: JobStatus, error: JobError | None) -> None:
        job = live.job
        job.status = status
        job.error = error
        job.finished_at = utcnow()
        await asyncio.shield(self._repo.save(job))  # first: the row never stays running
        if status is JobStatus.CANCELLED:
            await live.logfile.write("Cancelled.")
        elif error is not None and error.code == "interrupted":
            await live.logfile.write("Interrupted: the service stopped.")
        action = "build.failed" if status is JobStatus.FAILED else f"build.{status.value}"
        details = {"code": error.code} if error is not None else {}
        self._record(job, action, **details)
        log.info(
            "job.ended",
            job_id=job.id,
            kind=job.kind.value,
            status=status.value,
            code=error.code if error else None,
            seconds=round(job.duration or 0.0, 3),
        )

    def _record(self, job: Job, action: str, *, actor: str = SYSTEM, **details: Any) -> None:
        self._recorder.record(
            Change(
                action=action,
                resource=job.id,
                owner=job.owner,
                actor=actor,
                component="api" if actor != SYSTEM else "jobs",
                details={"kind": job.kind.value, "tags": list(job.tags), **details},
            )
        )

    # -- cancel, wait -----------------------------------------------------------------

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        """Cancel a queued or running job (it ends ``cancelled`` within seconds); a job
        that has ended is answered as it is."""
        principal.require(Permission.IMAGES_BUILD)
        job = await self._find(principal, job_id)
        live = self._live.get(job_id)
        if live is None or live.task is None:
            return job
        if live.cancel is None:
            live.cancel = JobStatus.CANCELLED
            live.task.cancel()
        await self._settle(live)
        return await self._find(principal, job_id)

    async def wait(self, job_id: str) -> None:
        """Until the job (of this process) has ended."""
        live = self._live.get(job_id)
        if live is not None:
            await self._settle(live)

    # -- start and stop --------------------------------------------------------------------

    async def recover(
        self,
        discard: Callable[[str], Awaitable[None]] | None = None,
        *,
        running: Collection[str] = (),
    ) -> int:
        """Jobs another process left queued or running end ``failed: interrupted``;
        ``discard`` removes what was made for each. ``running``: the ids of the other
        Dockyard processes that run now on the same database (their jobs are theirs)."""
        ended = 0
        for job in await self._repo.active():
            if job.instance == self.instance or job.instance in running:
                continue
            if discard is not None:
                await discard(job.id)
            job.status = JobStatus.FAILED
            job.error = JobError(
                "unavailable", "interrupted", "the service restarted during the job"
            )
            job.finished_at = utcnow()
            await self._repo.save(job)
            try:
                await self.logs.append_closed(job.id, "Interrupted: the service restarted.")
            except OSError:
                pass
            self._record(job, "build.failed", code="interrupted")
            ended += 1
        if ended:
            log.warning("jobs.interrupted", count=ended)
        return ended

    async def stop(self, deadline: float) -> int:
        """Cancel every job; each ends ``failed: interrupted`` (within ``deadline``)."""
        self._stopping = True
        lives = [live for live in self._live.values() if live.task is not None]
        for live in lives:
            live.cancel = JobStatus.FAILED
            live.task.cancel()  # type: ignore[union-attr]
        if lives:
            settled = [asyncio.ensure_future(self._settle(live)) for live in lives]
            _, pending = await asyncio.wait(settled, timeout=deadline)
            if pending:
                log.warning("jobs.stop_incomplete", pending=len(pending))
        return len(lives)
