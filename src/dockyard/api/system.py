"""Health, liveness and metrics (SPEC §9)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dockyard.api.deps import PrincipalDep, Services, ServicesDep
from dockyard.api.schemas.system import EngineHealth, HealthOut, LiveOut
from dockyard.domain.access.permissions import Permission
from dockyard.errors import DockyardError

router = APIRouter(tags=["system"])


@router.get("/livez")
async def livez() -> LiveOut:
    """Liveness: the process answers (no credentials needed)."""
    return LiveOut(status="ok")


# /healthz answers within a second whatever the engine does (issue 9 #4): a probe that
# has not answered in PROBE_WAIT is itself the news (the engine is not answering).
PROBE_WAIT = 0.5


class EngineProbe:
    """One engine probe at a time, shared by concurrent /healthz calls; a slow probe
    goes on after the answer and its result is the next call's last known version."""

    def __init__(self, version: Callable[[], Awaitable[str]]) -> None:
        self._version = version
        self._task: asyncio.Task[str | None] | None = None
        self.last_version: str | None = None

    async def check(self, wait: float) -> tuple[str | None, bool]:
        """The engine's version (the last known one if it is slow) and whether it
        answered within ``wait`` seconds."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._probe(), name="healthz-engine")
        try:
            version = await asyncio.wait_for(asyncio.shield(self._task), wait)
        except TimeoutError:
            return self.last_version, False
        return version, version is not None

    async def _probe(self) -> str | None:
        try:
            version = await self._version()
        except DockyardError:
            return None
        self.last_version = version
        return version


def _engine_probe(request: Request, services: Services) -> EngineProbe:
    probe: EngineProbe | None = getattr(request.app.state, "engine_probe", None)
    if probe is None:
        probe = request.app.state.engine_probe = EngineProbe(services.engine_version)
    return probe


@router.get("/healthz")
async def healthz(request: Request, principal: PrincipalDep, services: ServicesDep) -> HealthOut:
    """Health of the service, its engine and its database (answers within a second)."""
    principal.require(Permission.SYSTEM_READ)

    async def probe_db() -> bool:
        try:
            return await asyncio.wait_for(services.database_ping(), PROBE_WAIT)
        except Exception:  # any driver error, or no answer in time, means "not healthy"
            return False

    (docker_version, reachable), database_ok = await asyncio.gather(
        _engine_probe(request, services).check(PROBE_WAIT), probe_db()
    )
    report = services.reconciler.last_report
    healthy = reachable and database_ok
    return HealthOut(
        status="ok" if healthy else "degraded",
        compose_version=services.compose_version,
        docker_version=docker_version,
        database="ok" if database_ok else "unreachable",
        engines=[EngineHealth(id="local", reachable=reachable)],
        orphans=report.orphans,
        instance=services.jobs.instance,
        duties=services.duties(),
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
