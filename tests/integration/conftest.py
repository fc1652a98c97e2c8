from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.conftest import ADMIN, basic, make_settings
from tests.docker_helpers import docker, remove_projects, require_engine


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

    def assert_nothing_left(self) -> None:
        """No project folder and no container of this service remain."""
        assert os.listdir(self.settings.containers_dir) == []
        leftovers = docker(
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project.working_dir={self.settings.containers_dir}",
        )
        assert leftovers.strip() == ""

    async def user_client(self, name: str, role: str = "user") -> httpx.AsyncClient:
        from dockyard.domain.models import Role

        await self.services.auth.add_account(name, f"{name}-password", Role(role))
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url="http://live",
            headers=basic(name, f"{name}-password"),
            timeout=120,
        )


def zip_of(files: dict[str, bytes]) -> bytes:
    """A ZIP archive of ``files`` (name -> content), deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


@asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[Live]:
    """The real application (real Compose, real engine, SQLite) served in-process; a
    second one on the same settings is the same service restarted."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://live",
            headers=basic(*ADMIN),
            timeout=180,
        ) as client,
    ):
        yield Live(app, settings, client)


@asynccontextmanager
async def live_app(tmp_path: Path, **overrides: object) -> AsyncIterator[Live]:
    """``in_process`` on settings below ``tmp_path`` (``overrides`` by name); every
    container it made is removed afterwards."""
    settings = make_settings(tmp_path, **{"credential_cache_ttl": 60.0, **overrides})
    try:
        async with in_process(settings) as live:
            yield live
    finally:
        remove_projects(settings.containers_dir)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with live_app(tmp_path) as app:
        yield app
