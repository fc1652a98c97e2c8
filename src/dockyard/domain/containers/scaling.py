"""Scale: N replicas of a container's service (issue 11, ``POST /containers/{cuid}/scale``).

Replica 1 is the container itself; replicas 2..N are copies of its Compose service in
the same project (compose_doc.py), sharing its ``/app`` folder, env and limits. Each
replica publishes its own host ports, drawn from ``PORT_RANGE`` through the allocator
(one claim per replica, the ``replica`` column); a host port the client named (outside
``PORT_RANGE``) cannot be shared, so such a container stays at one replica. Quotas
and the engine's capacity count every replica (N containers, N times the CPUs and memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.lifecycle import require_usable
from dockyard.domain.containers.reads import ContainerReads
from dockyard.domain.engines.placement import LocalOnly, PlacementRequest, Placer
from dockyard.domain.models import ContainerRecord, Port, Status
from dockyard.domain.ports import ReplicaState
from dockyard.domain.recording import Change
from dockyard.errors import ConflictError, DockyardError, NotFoundError, ValidationError

log = structlog.get_logger("dockyard.containers")

# States in which a scale starts the new replicas (``up``); otherwise they are created
# (a paused container's new replicas start with its next start or restart).
_RUNNING = (Status.RUNNING, Status.RESTARTING)


def replica_count(replicas: int | None, count: int | None, maximum: int) -> int:
    """The count a scale asks for: the body's ``replicas`` or seed 004's ``?count=``
    (both given: they must agree), within 1..``maximum``."""
    if replicas is not None and count is not None and replicas != count:
        raise ValidationError(
            f"replicas ({replicas}) and count ({count}) disagree; send one of them",
            code="CONFLICTING_FIELDS",
            details={"field": "count", "provided": count},
        )
    wanted = replicas if replicas is not None else count
    if wanted is None:
        raise ValidationError(
            'say how many replicas: {"replicas": N} or ?count=N',
            code="MISSING_FIELD",
            details={"field": "replicas"},
        )
    if not 1 <= wanted <= maximum:
        raise ValidationError(
            f"replicas must be 1..{maximum} (DELETE removes a container)",
            code="INVALID_REPLICAS",
            details={"field": "replicas", "provided": wanted, "max": maximum},
        )
    return wanted


def require_replica(record: ContainerRecord, replica: int) -> None:
    """404 for a replica index the container does not have."""
    if not 1 <= replica <= record.replicas:
        raise NotFoundError(
            f"container {record.cuid} has no replica {replica} (it has {record.replicas})",
            code="REPLICA_NOT_FOUND",
            details={"id": record.cuid, "replica": replica, "replicas": record.replicas},
        )


class ScalingActions(ContainerReads):
    """``scale`` and the replicas' live states (mixed into ``ContainerService``)."""

    # Which engine a create goes to, and whether a growth fits its engine (wiring sets
    # the registry, EngineService.admit; engines/placement.py decides).
    placer: Placer = LocalOnly()

    async def scale(
        self, principal: Principal, cuid: str, replicas: int | None, *, count: int | None = None
    ) -> ContainerRecord:
        """Run ``replicas`` (or seed 004's ``count``) replicas of the container."""
        principal.require(Permission.CONTAINERS_CONTROL)
        record = await self.owned(principal, cuid)
        require_usable(record)
        replicas = replica_count(replicas, count, self._config.max_replicas)
        before = record.replicas
        if replicas == before:
            return record
        if replicas > 1:
            self._require_shareable(record)
        async with self.locked(cuid):
            await self._rescale(record, replicas)
        log.info("container.scaled", cuid=cuid, replicas=replicas, before=before)
        self._recorder.record(
            Change(
                "container.scaled",
                record.cuid,
                record.owner,
                principal.username,
                details={"replicas": replicas, "before": before},
            )
        )
        return record

    def require_single(self, record: ContainerRecord) -> None:
        """Changes that would have to be redone per replica wait for a scale to 1."""
        if record.replicas > 1:
            raise ConflictError(
                f"the container runs {record.replicas} replicas; scale it to 1 first",
                code="CONTAINER_SCALED",
                details={"replicas": record.replicas},
            )

    def _require_shareable(self, record: ContainerRecord) -> None:
        fixed = [p for p in record.spec.ports if p.host and not self.ports.drawable(p)]
        if fixed:
            port = fixed[0]
            raise ConflictError(
                f"host port {port.host}/{port.protocol} was named by the client and cannot"
                ' be shared by replicas; publish it with "host": null (a port from'
                " PORT_RANGE for each replica) to scale",
                code="PORT_NOT_SHAREABLE",
                details={"field": "ports", "port": port.host, "protocol": port.protocol},
            )

    async def _rescale(self, record: ContainerRecord, replicas: int) -> None:
        """Claim the new replicas' ports and admit them under the quota (stored before
        Compose runs, so a concurrent create cannot take the same share), then let
        Compose add or remove them; on failure everything is as it was."""
        before, old_ports = record.replicas, dict(record.replica_ports)
        await self.refresh(record)
        ports = {k: v for k, v in old_ports.items() if k <= replicas}
        stored = False
        try:
            for index in range(before + 1, replicas + 1):
                ports[index] = await self.ports.claim_replica(
                    record.cuid, record.engine, index, record.spec.ports
                )
            await self._store_scale(record, replicas, ports)
            stored = True
            await self._compose_scale(record)
        except BaseException:
            record.replicas, record.replica_ports = before, old_ports
            if stored:  # put the project back as it was (a replica may be half made)
                with suppress(DockyardError):
                    await self._repo.save(record)
                    await self._compose_scale(record)
            await self._release_replicas(record.cuid, ports, keep=before)
            raise
        await self._release_replicas(record.cuid, old_ports, keep=replicas)
        await self.refresh(record)

    async def _store_scale(
        self, record: ContainerRecord, replicas: int, ports: dict[int, list[Port]]
    ) -> None:
        """Store the new count; a growth must fit the owner's quota (a shrink always
        may, even when a lowered quota is exceeded already)."""
        if replicas < record.replicas:
            record.replicas, record.replica_ports = replicas, ports
            await self._repo.save(record)
            return
        on = PlacementRequest(engine=record.engine)  # 409 NO_CAPACITY: its engine is full
        grown = replicas - record.replicas
        async with (
            self.placer.admit(on, self.with_defaults(record.spec).resources, count=grown),
            self._quotas.admit(record.owner, record.spec, replacing=record.cuid, count=replicas),
        ):
            record.replicas, record.replica_ports = replicas, ports
            await self._repo.save(record)

    async def _compose_scale(self, record: ContainerRecord) -> None:
        project_dir = self.project_dir(record.cuid)
        await self._compose.write(project_dir, self.document(record))
        async with self._heavy:
            if record.status in _RUNNING:
                await self._compose.up(record.cuid, project_dir)
            else:
                await self._compose.create(record.cuid, project_dir)

    async def _release_replicas(
        self, cuid: str, ports: dict[int, list[Port]], *, keep: int
    ) -> None:
        """Give back the host ports of the replicas above ``keep``."""
        keys = {
            (p.host, p.protocol)
            for index, items in ports.items()
            if index > keep
            for p in items
            if p.host is not None
        }
        if keys:
            await self.ports.release(cuid, keys)

    async def replica_states(self, record: ContainerRecord) -> list[ReplicaState]:
        """Each replica's status and published ports; replica 1 from the record (kept
        current by the engine's events), the others from the engine (one list call)."""
        if record.replicas == 1:
            return _merged(record, [])
        return _merged(record, await self._engine.list_replicas(record.cuid))

    async def replica_states_of(
        self, records: Sequence[ContainerRecord]
    ) -> dict[str, list[ReplicaState]]:
        """``replica_states`` of a page of records: one engine call for all the scaled ones
        (none when none is scaled)."""
        scaled = [r.cuid for r in records if r.replicas > 1]
        seen: dict[str, list[ReplicaState]] = {}
        if len(scaled) == 1:  # one container (a GET): its own replicas, not the engine's
            seen = {scaled[0]: await self._engine.list_replicas(scaled[0])}
        elif scaled:
            seen = await self._engine.replicas_of_many(scaled)
        return {r.cuid: _merged(r, seen.get(r.cuid, [])) for r in records}


def _merged(record: ContainerRecord, listed: Sequence[ReplicaState]) -> list[ReplicaState]:
    """Replica 1 from the record, replicas 2..N as the engine lists them (``missing`` when
    it does not; the assigned ports while one is not running)."""
    first = ReplicaState(1, record.status, list(record.spec.ports))
    if record.replicas == 1:
        return [first]
    seen = {r.index: r for r in listed}
    states: list[ReplicaState] = []
    for index in range(1, record.replicas + 1):
        assigned = first.ports if index == 1 else record.replica_ports.get(index, [])
        state = seen.get(index) or (first if index == 1 else None)
        if state is None:
            state = ReplicaState(index, Status.MISSING, assigned)
        elif not state.ports:  # not running: the engine lists no binding
            state = ReplicaState(index, state.status, assigned)
        states.append(state)
    return states
