"""``/engines`` and ``/cluster/info``: the engines Dockyard drives (SPEC §8)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.idempotency import IDEMPOTENT
from dockyard.api.schemas.engines import (
    ClusterInfoOut,
    CreateEngine,
    EngineList,
    EngineOut,
    UpdateEngine,
)

router = APIRouter(tags=["engines"])


@router.get("/engines")
async def list_engines(principal: PrincipalDep, services: ServicesDep) -> EngineList:
    """Every engine, with the watcher's latest word on it (never its TLS files)."""
    views = await services.engines.list(principal)
    return EngineList(engines=[EngineOut.of(v) for v in views])


@router.post("/engines", status_code=201, dependencies=[IDEMPOTENT])
async def add_engine(
    body: CreateEngine, principal: PrincipalDep, services: ServicesDep
) -> EngineOut:
    """Add an engine by its address (Shipyard's body too); the answer has its first poll."""
    return EngineOut.of(await services.engines.add(principal, body.draft()))


@router.get("/engines/{engine_id}")
async def get_engine(engine_id: str, principal: PrincipalDep, services: ServicesDep) -> EngineOut:
    """One engine."""
    return EngineOut.of(await services.engines.get(principal, engine_id))


@router.patch("/engines/{engine_id}")
async def update_engine(
    engine_id: str, body: UpdateEngine, principal: PrincipalDep, services: ServicesDep
) -> EngineOut:
    """Change an engine's labels, declared capacity, or draining."""
    return EngineOut.of(await services.engines.update(principal, engine_id, body.changes()))


@router.post("/engines/{engine_id}/drain")
async def drain_engine(engine_id: str, principal: PrincipalDep, services: ServicesDep) -> EngineOut:
    """Take no new containers there (those it holds stay)."""
    return EngineOut.of(await services.engines.set_draining(principal, engine_id, True))


@router.post("/engines/{engine_id}/undrain")
async def undrain_engine(
    engine_id: str, principal: PrincipalDep, services: ServicesDep
) -> EngineOut:
    """Take new containers there again."""
    return EngineOut.of(await services.engines.set_draining(principal, engine_id, False))


@router.delete("/engines/{engine_id}", status_code=204)
async def remove_engine(engine_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    """Forget an engine (409 for local, and while it holds containers)."""
    await services.engines.remove(principal, engine_id)
    return Response(status_code=204)


@router.get("/cluster/info")
async def cluster_info(principal: PrincipalDep, services: ServicesDep) -> ClusterInfoOut:
    """CPUs, memory, reserved, containers and images, per engine and in total."""
    return ClusterInfoOut.of(await services.engines.cluster(principal))
