"""The FastAPI application over a ``Runtime`` (``runtime/`` builds and wires it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from dockyard.api import accounts as accounts_api
from dockyard.api import audit as audit_api
from dockyard.api import auth as auth_api
from dockyard.api import builds as builds_api
from dockyard.api import checkin as checkin_api
from dockyard.api import containers as containers_api
from dockyard.api import docs as docs_api
from dockyard.api import engines as engines_api
from dockyard.api import errors as api_errors
from dockyard.api import files as files_api
from dockyard.api import hub as hub_api
from dockyard.api import idempotency
from dockyard.api import images as images_api
from dockyard.api import observe as observe_api
from dockyard.api import openapi as openapi_doc
from dockyard.api import registries as registries_api
from dockyard.api import roles as roles_api
from dockyard.api import servicekeys as servicekeys_api
from dockyard.api import system as system_api
from dockyard.api import terminal as terminal_api
from dockyard.api import ui as ui_api
from dockyard.api import webhooks as webhooks_api
from dockyard.api.bodies import BodyRulesMiddleware
from dockyard.api.idempotency import IdempotencyMiddleware
from dockyard.api.middleware import ActionLog, Metrics, RequestContextMiddleware
from dockyard.runtime import Runtime, build_services
from dockyard.settings import Settings
from dockyard.ui import Assets

ROUTERS = (
    system_api.router,
    auth_api.router,
    docs_api.router,
    containers_api.router,
    checkin_api.router,
    files_api.router,
    observe_api.router,
    terminal_api.router,
    accounts_api.router,
    roles_api.router,
    servicekeys_api.router,
    audit_api.router,
    images_api.router,
    registries_api.router,
    builds_api.router,
    webhooks_api.router,
    hub_api.router,
    engines_api.router,
    ui_api.router,
)


def create_app(settings: Settings, *, runtime: Runtime | None = None, **overrides: Any) -> FastAPI:
    """The application; ``overrides`` go to ``build_services`` (tests pass fakes for the
    engine, Compose, the hasher and the fetcher). The lifespan starts the runtime unless
    it was started already (``dockyard serve`` starts it first, to fail in one line)."""
    runtime = runtime or build_services(settings, **overrides)
    action_log = ActionLog(settings.log_dir / "actions.jsonl")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            action_log.close()

    app = FastAPI(
        title="Dockyard",
        version="0.1.0",
        summary="Run Docker containers for API clients, safely.",
        lifespan=lifespan,
        openapi_url=None,  # served by api/docs.py, behind credentials
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = lambda: openapi_doc.contract(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.services = runtime.services
    app.state.runtime = runtime
    app.state.metrics = metrics = Metrics()
    app.state.ui_assets = Assets.load()
    api_errors.install(app)
    idempotency.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        BodyRulesMiddleware,
        max_json_bytes=settings.json_body_max_bytes,
        dev_mode=settings.dev_mode,
    )
    app.add_middleware(IdempotencyMiddleware, idempotency=runtime.services.idempotency)
    app.add_middleware(
        RequestContextMiddleware,
        action_log=action_log,
        metrics=metrics,
        dev_mode=settings.dev_mode,
        audit=runtime.services.audit,
    )
    return app
