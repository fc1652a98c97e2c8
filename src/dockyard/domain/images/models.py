"""The values of jobs (builds, pulls and hub redeploys, SPEC §6-7) and the store's port
for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from dockyard.domain.models import utcnow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JobKind(StrEnum):
    BUILD = "build"
    PULL = "pull"
    REDEPLOY = "redeploy"  # a hub webhook: pull or build, then recreate (issue 11)


class JobStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    PULLING = "pulling"
    PUSHING = "pushing"
    REDEPLOYING = "redeploying"  # a redeploy recreating its containers
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = frozenset(
    {
        JobStatus.QUEUED,
        JobStatus.BUILDING,
        JobStatus.PULLING,
        JobStatus.PUSHING,
        JobStatus.REDEPLOYING,
    }
)


@dataclass
class JobError:
    kind: str  # an error kind of SPEC §9, e.g. engine_error, auth_error, timeout
    code: str  # e.g. BUILD_FAILED, BUILD_TIMEOUT, interrupted
    message: str
    step: str | None = None  # e.g. "Step 3/4 : RUN false"


@dataclass
class Job:
    id: str
    kind: JobKind
    owner: str
    instance: str  # the process that runs it
    status: JobStatus = JobStatus.QUEUED
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    step: int | None = None
    total_steps: int | None = None
    image_id: str | None = None
    digest: str | None = None
    tags: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)  # the request, without secrets
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)  # by layer
    error: JobError | None = None
    result: dict[str, Any] | None = None  # what a redeploy did, container by container

    @property
    def seq(self) -> int:
        """Microseconds of ``created_at``: unique in the store (``JobService._stamp``)."""
        return (self.created_at - EPOCH) // timedelta(microseconds=1)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass
class JobQuery:
    owner: str | None = None  # None: every owner (admins)
    statuses: tuple[JobStatus, ...] = ()
    kinds: tuple[JobKind, ...] = ()
    before: datetime | None = None
    limit: int = 50


class JobRepository(Protocol):
    async def insert(self, job: Job) -> None: ...
    async def save(self, job: Job) -> None: ...
    async def get(self, job_id: str) -> Job | None: ...
    async def query(self, query: JobQuery) -> list[Job]: ...
    async def active(self) -> list[Job]:
        """Jobs whose status is still queued or running, of any process."""
        ...
