"""``JobRepository``: the ``jobs`` table (builds and pulls)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Select, insert, select, update

from dockyard.domain.images.models import ACTIVE, Job, JobError, JobKind, JobQuery, JobStatus
from dockyard.store.database import Database
from dockyard.store.tables import jobs


def job_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind.value,
        "owner": job.owner,
        "status": job.status.value,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "step": job.step,
        "total_steps": job.total_steps,
        "image_id": job.image_id,
        "digest": job.digest,
        "tags": list(job.tags),
        "spec": job.spec,
        "progress": job.progress,
        "error": asdict(job.error) if job.error is not None else None,
        "instance": job.instance,
        "result": job.result,
    }


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        owner=row.owner,
        instance=row.instance,
        status=JobStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        step=row.step,
        total_steps=row.total_steps,
        image_id=row.image_id,
        digest=row.digest,
        tags=list(row.tags or []),
        spec=dict(row.spec or {}),
        progress=dict(row.progress or {}),
        error=JobError(**row.error) if row.error else None,
        result=dict(row.result) if row.result else None,
    )


class SqlJobRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, job: Job) -> None:
        async with self._db.writing() as conn:
            await conn.execute(insert(jobs).values(**job_row(job)))

    async def save(self, job: Job) -> None:
        values = job_row(job)
        values.pop("id")
        async with self._db.writing() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job.id).values(**values))

    async def get(self, job_id: str) -> Job | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return _job(row) if row is not None else None

    async def query(self, query: JobQuery) -> list[Job]:
        stmt: Select[Any] = (
            select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(query.limit)
        )
        if query.owner is not None:
            stmt = stmt.where(jobs.c.owner == query.owner)
        if query.statuses:
            stmt = stmt.where(jobs.c.status.in_([s.value for s in query.statuses]))
        if query.kinds:
            stmt = stmt.where(jobs.c.kind.in_([k.value for k in query.kinds]))
        if query.before is not None:
            stmt = stmt.where(jobs.c.created_at < query.before)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_job(row) for row in rows]

    async def active(self) -> list[Job]:
        stmt = select(jobs).where(jobs.c.status.in_([s.value for s in ACTIVE]))
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_job(row) for row in rows]
