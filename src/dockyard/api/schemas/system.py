"""Liveness and health (SPEC §9)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dockyard.api.schemas.common import Out


class LiveOut(Out):
    status: Literal["ok"]


class EngineHealth(Out):
    id: str
    reachable: bool


class HealthOut(Out):
    status: Literal["ok", "degraded"]
    compose_version: str
    docker_version: str | None
    database: Literal["ok", "unreachable"]
    engines: list[EngineHealth]
    orphans: list[str]
    instance: str = Field(description="this Dockyard process's id (its jobs carry it)")
    duties: list[str] = Field(
        description="what this process runs for all (engine:<id> follows and reconciles "
        "that engine; deliveries sends webhooks): all of them unless several processes "
        "share one PostgreSQL, then the ones whose lease it holds"
    )
