"""Liveness and health (SPEC §9)."""

from __future__ import annotations

from typing import Literal

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
