"""The reads of jobs (SPEC §6): one job, a page of them, a job's log; a job that is
running is read from memory (its progress moves faster than the store is written)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.images.joblogs import JobLogs
from dockyard.domain.images.models import EPOCH, Job, JobKind, JobQuery, JobRepository, JobStatus
from dockyard.domain.observe.streams import LeasedStream
from dockyard.domain.paging import Page, before, check_limit, page_of

MAX_PAGE = 500


class _HasJob(Protocol):
    job: Job


class JobReads:
    """Reads over the store and the jobs this process runs (``_live``)."""

    _repo: JobRepository
    logs: JobLogs
    _live: Mapping[str, _HasJob]

    async def get(self, principal: Principal, job_id: str) -> Job:
        principal.require(Permission.IMAGES_READ)
        return await self._find(principal, job_id)

    async def _find(self, principal: Principal, job_id: str) -> Job:
        """The job if ``principal`` sees it (its own, or any for admins); else 404."""
        job = await self.peek(job_id)
        if job is None or not principal.sees(job.owner):
            raise not_found("build", job_id)
        return job

    async def peek(self, job_id: str) -> Job | None:
        """The job as it is now, for Dockyard itself (a replayed hub delivery's job)."""
        live = self._live.get(job_id)
        return self._copy(live.job) if live is not None else await self._repo.get(job_id)

    async def page(
        self,
        principal: Principal,
        *,
        statuses: tuple[JobStatus, ...] = (),
        kinds: tuple[JobKind, ...] = (),
        limit: int,
        cursor: str | None,
    ) -> Page[Job]:
        """Newest first, keyset-paginated; one's own jobs (admins: everyone's)."""
        principal.require(Permission.IMAGES_READ)
        check_limit(limit, MAX_PAGE)
        start = before(cursor)
        query = JobQuery(
            owner=None if principal.is_admin else principal.username,
            statuses=statuses,
            kinds=kinds,
            before=EPOCH + timedelta(microseconds=start) if start is not None else None,
            limit=limit + 1,
        )
        rows = [self._fresh(job) for job in await self._repo.query(query)]
        return page_of(rows, limit)

    def _fresh(self, job: Job) -> Job:
        live = self._live.get(job.id)
        return self._copy(live.job) if live is not None else job

    async def open_log(
        self, principal: Principal, job_id: str, *, follow: bool
    ) -> LeasedStream[bytes]:
        await self.get(principal, job_id)
        return self.logs.stream(job_id, follow=follow)

    @staticmethod
    def _copy(job: Job) -> Job:
        return Job(
            **{
                **job.__dict__,
                "tags": list(job.tags),
                "progress": {k: dict(v) for k, v in job.progress.items()},
            }
        )
