"""``ContainerRepository``: the ``containers`` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select, update

from dockyard.domain.access.audit import AuditEntry
from dockyard.domain.models import ContainerRecord, ContainerSpec, Port, Status
from dockyard.domain.ports import ContainerQuery
from dockyard.store.database import Database
from dockyard.store.journal import insert_audit
from dockyard.store.tables import containers, port_allocations


def _tags_text(tags: list[str]) -> str:
    return "," + ",".join(tags) + ","


def _host_ports_text(record: ContainerRecord) -> str:
    return "," + ",".join(f"{p.host}/{p.protocol}" for p in record.spec.ports if p.host) + ","


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Scale (issue 11) rides in the spec's JSON under this key, without a column of its own
# (no migration); a record of one replica leaves it out, as before.
SCALE_KEY = "scale"


def _spec_json(record: ContainerRecord) -> dict[str, Any]:
    data = record.spec.model_dump(mode="json")
    if record.replicas != 1 or record.replica_ports:
        data[SCALE_KEY] = {
            "replicas": record.replicas,
            "ports": {
                str(index): [p.model_dump(mode="json") for p in ports]
                for index, ports in sorted(record.replica_ports.items())
            },
        }
    return data


def split_spec(raw: dict[str, Any]) -> tuple[ContainerSpec, int, dict[int, list[Port]]]:
    """The stored JSON as the spec, the replica count and the replicas' host ports."""
    data = dict(raw)
    scale = data.pop(SCALE_KEY, None) or {}
    ports = {
        int(index): [Port.model_validate(p) for p in items]
        for index, items in (scale.get("ports") or {}).items()
    }
    return ContainerSpec.model_validate(data), int(scale.get("replicas", 1)), ports


def _row_values(record: ContainerRecord) -> dict[str, Any]:
    return {
        "cuid": record.cuid,
        "owner": record.owner,
        "image": record.spec.image,
        "name": record.spec.name,
        "tags_text": _tags_text(record.spec.tags),
        "host_ports": _host_ports_text(record),
        "status": record.status.value,
        "spec": _spec_json(record),
        "engine": record.engine,
        "exit_code": record.exit_code,
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "restart_count": record.restart_count,
        "last_activity_at": record.last_activity_at,
        "idle_timeout": record.idle_timeout,
        "expires_at": record.expires_at,
        "checkin_token_hash": record.checkin_token_hash,
        "constraints": dict(record.constraints) or None,
    }


def _record(row: Any) -> ContainerRecord:
    spec, replicas, replica_ports = split_spec(row.spec)
    return ContainerRecord(
        cuid=row.cuid,
        seq=row.seq,
        owner=row.owner,
        spec=spec,
        replicas=replicas,
        replica_ports=replica_ports,
        engine=row.engine,
        status=Status(row.status),
        exit_code=row.exit_code,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        restart_count=row.restart_count,
        last_activity_at=row.last_activity_at,
        idle_timeout=row.idle_timeout,
        expires_at=row.expires_at,
        checkin_token_hash=row.checkin_token_hash,
        constraints=row.constraints or {},
    )


class _NoCache(dict[str, ContainerRecord]):
    """A cache that keeps nothing."""

    def __setitem__(self, key: str, value: ContainerRecord) -> None:
        return None

    def setdefault(self, key: str, default: ContainerRecord) -> ContainerRecord:
        return default


class SqlContainerRepository:
    """Containers in the database, with a write-through cache of single records.

    ``GET /containers/{cuid}`` is the hottest read; the database stays the truth, and
    on SQLite one Dockyard process owns it, so every write passes through here and keeps
    the cache in step (under the same write lock, in the same order as the database)."""

    def __init__(self, db: Database, *, cache: bool = True) -> None:
        self._db = db
        # Several processes on one database (PostgreSQL): no cache, each read is the
        # store's (another process may have changed the record).
        self._cache: dict[str, ContainerRecord] = {} if cache else _NoCache()
        # Counts deletes: a read that saw a row before a delete's commit (a GET polling
        # while the container is removed) must not put it back into the cache after.
        self._deletes = 0

    async def insert(self, record: ContainerRecord) -> ContainerRecord:
        async with self._db.writing() as conn:
            result = await conn.execute(insert(containers).values(**_row_values(record)))
            record.seq = int(result.inserted_primary_key[0])  # type: ignore[index]
            self._cache[record.cuid] = record.model_copy(deep=True)
        return record

    async def get(self, cuid: str) -> ContainerRecord | None:
        cached = self._cache.get(cuid)
        if cached is not None:
            return cached.model_copy(deep=True)
        deletes = self._deletes
        async with self._db.reading() as conn:
            row = (await conn.execute(select(containers).where(containers.c.cuid == cuid))).first()
        if row is None:
            return None
        record = _record(row)
        if deletes == self._deletes:
            self._cache.setdefault(cuid, record.model_copy(deep=True))
        return record

    async def save(self, record: ContainerRecord, *, audit: AuditEntry | None = None) -> None:
        values = _row_values(record)
        values.pop("cuid")
        # Activity has its own writer (save_activity): a save never takes it back.
        values.pop("last_activity_at")
        async with self._db.writing() as conn:
            await conn.execute(
                update(containers).where(containers.c.cuid == record.cuid).values(**values)
            )
            if audit is not None:
                await insert_audit(conn, [audit])
            self._cache[record.cuid] = record.model_copy(deep=True)

    async def save_state(self, record: ContainerRecord) -> None:
        """Only the observed state: never overwrites a spec that changed meanwhile."""
        async with self._db.writing() as conn:
            await conn.execute(
                update(containers)
                .where(containers.c.cuid == record.cuid)
                .values(
                    status=record.status.value,
                    exit_code=record.exit_code,
                    started_at=record.started_at,
                    finished_at=record.finished_at,
                    restart_count=record.restart_count,
                    error=record.error,  # an engine's word on why it does not run
                )
            )
            cached = self._cache.get(record.cuid)
            if cached is not None:
                cached.status = record.status
                cached.exit_code = record.exit_code
                cached.started_at = record.started_at
                cached.finished_at = record.finished_at
                cached.restart_count = record.restart_count
                cached.error = record.error

    async def save_activity(self, marks: dict[str, datetime]) -> None:
        """Each container's ``last_activity_at``, in one transaction."""
        if not marks:
            return
        async with self._db.writing() as conn:
            for cuid, when in marks.items():
                await conn.execute(
                    update(containers)
                    .where(containers.c.cuid == cuid)
                    .values(last_activity_at=when)
                )
                cached = self._cache.get(cuid)
                if cached is not None:
                    cached.last_activity_at = when

    async def timed(self) -> list[ContainerRecord]:
        """Records with an idle timeout or an expiry (the scheduler's start-up)."""
        stmt = select(containers).where(
            or_(containers.c.idle_timeout.is_not(None), containers.c.expires_at.is_not(None))
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_record(row) for row in rows]

    async def delete(self, cuid: str, *, audit: AuditEntry | None = None) -> None:
        """The record and its host-port claims, in one transaction (a delete path that
        released the claims first paid a read or a commit more)."""
        async with self._db.writing() as conn:
            self._deletes += 1
            await conn.execute(delete(port_allocations).where(port_allocations.c.cuid == cuid))
            await conn.execute(delete(containers).where(containers.c.cuid == cuid))
            if audit is not None:
                await insert_audit(conn, [audit])
            self._cache.pop(cuid, None)
        self._deletes += 1  # committed: reads that began before now are stale
        self._cache.pop(cuid, None)

    async def query(self, query: ContainerQuery) -> list[ContainerRecord]:
        stmt: Select[Any] = select(containers).order_by(containers.c.seq.desc()).limit(query.limit)
        if query.owner is not None:
            stmt = stmt.where(containers.c.owner == query.owner)
        if query.statuses:
            stmt = stmt.where(containers.c.status.in_([s.value for s in query.statuses]))
        if query.image:
            stmt = stmt.where(containers.c.image == query.image)
        if query.tag:
            pattern = "%," + _like_escape(query.tag) + ",%"
            stmt = stmt.where(containers.c.tags_text.like(pattern, escape="\\"))
        if query.before_seq is not None:
            stmt = stmt.where(containers.c.seq < query.before_seq)
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_record(row) for row in rows]

    async def all(self) -> list[ContainerRecord]:
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(containers).order_by(containers.c.seq))).all()
        return [_record(row) for row in rows]
