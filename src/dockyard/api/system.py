"""Health, liveness and metrics (SPEC §9)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.schemas.system import EngineHealth, HealthOut, LiveOut
from dockyard.domain.access.permissions import Permission
from dockyard.errors import DockyardError

router = APIRouter(tags=["system"])


@router.get("/livez")
async def livez() -> LiveOut:
    """Liveness: the process answers (no credentials needed)."""
    return LiveOut(status="ok")


@router.get("/healthz")
async def healthz(principal: PrincipalDep, services: ServicesDep) -> HealthOut:
    """Health of the service, its engine and its database."""
    principal.require(Permission.SYSTEM_READ)

    async def probe_engine() -> str | None:
        try:
            return await services.engine_version()
        except DockyardError:
            return None

    async def probe_db() -> bool:
        try:
            return await services.database_ping()
        except Exception:  # any driver error means "not healthy"
            return False

    docker_version, database_ok = await asyncio.gather(probe_engine(), probe_db())
    report = services.reconciler.last_report
    healthy = docker_version is not None and database_ok
    return HealthOut(
        status="ok" if healthy else "degraded",
        compose_version=services.compose_version,
        docker_version=docker_version,
        database="ok" if database_ok else "unreachable",
        engines=[EngineHealth(id="local", reachable=docker_version is not None)],
        orphans=report.orphans,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, principal: PrincipalDep) -> Response:
    """Prometheus metrics."""
    principal.require(Permission.SYSTEM_READ)
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
