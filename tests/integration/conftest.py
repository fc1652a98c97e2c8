from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.conftest import ADMIN, basic, make_settings
from tests.docker_helpers import remove_project, require_engine


@pytest.fixture(autouse=True)
def _engine_required() -> None:
    require_engine()


@dataclass
class Live:
    app: FastAPI
    settings: Settings
    client: httpx.AsyncClient

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def create(self, **body: Any) -> dict[str, Any]:
        resp = await self.client.post("/containers", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def user_client(self, name: str, role: str = "user") -> httpx.AsyncClient:
        from dockyard.domain.models import Role

        await self.services.auth.add_account(name, f"{name}-password", Role(role))
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url="http://live",
            headers=basic(name, f"{name}-password"),
            timeout=120,
        )


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """The real application (real Compose, real engine, SQLite) served in-process."""
    settings = make_settings(tmp_path, credential_cache_ttl=60.0)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://live", headers=basic(*ADMIN), timeout=180
            ) as client:
                yield Live(app, settings, client)
    finally:
        containers_dir = settings.containers_dir
        if containers_dir.exists():
            for project in os.listdir(containers_dir):
                remove_project(project)
