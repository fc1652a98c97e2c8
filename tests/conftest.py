from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.fakes import FakeCompose, FakeEngine, FakeImages, FastHasher

# The real-server fixtures (``serve``, ``server``) and the extra engines (``extra_engines``)
# for every folder that needs them.
pytest_plugins = ["tests.server", "tests.engines"]

ADMIN = ("admin", "admin-secret-pass")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_user": ADMIN[0],
        "app_pass": ADMIN[1],
        "data_dir": tmp_path / "data",
        "log_dir": tmp_path / "logs",
        "network_name": "dockyard-test",
        "reconcile_interval": 3600.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeWorld:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        self.engine = FakeEngine()
        self.compose = FakeCompose(self.engine)
        self.settings = make_settings(tmp_path, **settings)
        self.app = create_app(
            self.settings,
            engine=self.engine,
            compose=self.compose,
            compose_version="2.99.0",
            hasher=FastHasher(),
            images=FakeImages(self.engine),
        )


@pytest.fixture
async def fake_world(tmp_path: Path) -> AsyncIterator[FakeWorld]:
    world = FakeWorld(tmp_path)
    async with world.app.router.lifespan_context(world.app):
        yield world


@pytest.fixture
async def fake_client(fake_world: FakeWorld) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake_world.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=basic(*ADMIN)
    ) as client:
        yield client
