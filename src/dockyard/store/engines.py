"""``EngineRepository``: the ``engines`` table, and containers counted by engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update

from dockyard.domain.engines.cluster import ContainerUse
from dockyard.domain.engines.models import EngineKind, EngineRecord
from dockyard.domain.models import Status
from dockyard.store.containers import SCALE_KEY
from dockyard.store.database import Database
from dockyard.store.tables import containers, engines

# Records whose container does not exist hold nothing on their engine.
_GONE = (Status.MISSING.value, Status.FAILED.value)


def _values(record: EngineRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "addr": record.addr,
        "kind": record.kind.value,
        "labels": record.labels,
        "cpus": record.cpus,
        "memory": record.memory,
        "tls": record.tls,
        "draining": record.draining,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "host_access": record.host_access,
    }


def _record(row: Any) -> EngineRecord:
    return EngineRecord(
        id=row.id,
        addr=row.addr,
        kind=EngineKind(row.kind),
        labels=dict(row.labels or {}),
        cpus=row.cpus,
        memory=row.memory,
        tls=bytes(row.tls) if row.tls is not None else None,
        draining=bool(row.draining),
        created_at=row.created_at,
        updated_at=row.updated_at,
        host_access=bool(row.host_access),
    )


class SqlEngineRepository:
    """The engines table. With ``cache`` (SQLite: one Dockyard process owns the database,
    so every change passes through here) the list is read once and kept until a change;
    a placement then costs no read. Several processes (PostgreSQL) read it each time."""

    def __init__(self, db: Database, *, cache: bool = False) -> None:
        self._db = db
        self._caching = cache
        self._all: list[EngineRecord] | None = None  # records are frozen: shared safely
        self._generation = 0  # a read that began before a change must not be kept

    def _changed(self) -> None:
        self._all = None
        self._generation += 1

    async def insert(self, record: EngineRecord) -> None:
        self._changed()
        async with self._db.writing() as conn:
            await conn.execute(insert(engines).values(**_values(record)))
        self._changed()

    async def get(self, engine_id: str) -> EngineRecord | None:
        async with self._db.reading() as conn:
            row = (await conn.execute(select(engines).where(engines.c.id == engine_id))).first()
        return None if row is None else _record(row)

    async def all(self) -> list[EngineRecord]:
        if self._all is not None:
            return list(self._all)
        generation = self._generation
        async with self._db.reading() as conn:
            rows = (await conn.execute(select(engines).order_by(engines.c.created_at))).all()
        # The local engine first, then in the order they were added.
        records = sorted((_record(row) for row in rows), key=lambda r: r.id != "local")
        if self._caching and generation == self._generation:
            self._all = records
        return list(records)

    async def save(self, record: EngineRecord) -> None:
        values = _values(record)
        del values["id"], values["created_at"]
        self._changed()
        async with self._db.writing() as conn:
            await conn.execute(update(engines).where(engines.c.id == record.id).values(**values))
        self._changed()

    async def delete(self, engine_id: str) -> None:
        self._changed()
        async with self._db.writing() as conn:
            await conn.execute(delete(engines).where(engines.c.id == engine_id))
        self._changed()

    async def containers_on(self, engine_id: str) -> int:
        stmt = (
            select(func.count())
            .select_from(containers)
            .where(containers.c.engine == engine_id, containers.c.status.not_in(_GONE))
        )
        async with self._db.reading() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def usage(self) -> list[ContainerUse]:
        """Every record's engine, status, declared resources and replicas (the sums are
        ``reserved_by_engine``'s, for /cluster/info and placement alike)."""
        stmt = select(
            containers.c.engine,
            containers.c.status,
            containers.c.spec["resources"].label("resources"),
            containers.c.spec[SCALE_KEY].label("scale"),
        )
        async with self._db.reading() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_use(row) for row in rows]


def _use(row: Any) -> ContainerUse:
    res = row.resources if isinstance(row.resources, dict) else {}
    cpus = res.get("cpus")
    memory = res.get("memory")
    scale = row.scale if isinstance(row.scale, dict) else {}
    replicas = scale.get("replicas")
    return ContainerUse(
        engine=row.engine,
        status=row.status,
        cpus=float(cpus) if isinstance(cpus, int | float) else None,
        memory=str(memory) if memory else None,
        replicas=replicas if isinstance(replicas, int) and replicas > 0 else 1,
    )
