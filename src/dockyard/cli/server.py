"""The service's commands: ``dockyard serve`` and ``dockyard migrate``. This module
loads the server's stack; the client commands never import it."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

import structlog

from dockyard.errors import DockyardError
from dockyard.settings import Settings, describe_error


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError or a bad .env
        print(f"dockyard: {describe_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(settings: Settings) -> None:
    import uvicorn

    from dockyard.server import deadline_protocol

    config = uvicorn.Config(
        "dockyard.app:create_app",  # replaced below: the app is built in the server's loop
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keepalive_timeout,
        http=deadline_protocol(settings.header_timeout, settings.body_idle_timeout),
        # Pings find a vanished terminal client within ~10 s (its exec is then killed).
        ws_ping_interval=5.0,
        ws_ping_timeout=5.0,
        ws_max_size=2 * 1024 * 1024,
        # Terminal frames are small or already dense (base64); compressing them cost 5x
        # the throughput of `cat` of a large file (docs/benchmarks.md, terminal).
        ws_per_message_deflate=False,
    )
    code = _run(_serve(settings, config), config)
    if code:
        raise SystemExit(code)


def _run(main: Coroutine[Any, Any, int], config: Any) -> int:
    from uvicorn._compat import asyncio_run

    return asyncio_run(main, loop_factory=config.get_loop_factory())


async def _serve(settings: Settings, config: Any) -> int:
    """Start the runtime before binding, so that a failure (database, admin bootstrap,
    engine) is one clear line; then serve until a signal; the lifespan stops it."""
    from dockyard.app import create_app
    from dockyard.runtime import build_services

    try:
        runtime = build_services(settings)
        await runtime.start()
    except DockyardError as exc:
        print(f"dockyard: {exc.message}", file=sys.stderr)
        return 2
    config.app = create_app(settings, runtime=runtime)
    server = _server(config, runtime)
    try:
        await server.serve()
    finally:
        await runtime.stop()
    return 0 if server.started else 3


def _server(config: Any, runtime: Any) -> Any:
    """uvicorn's server, but terminal sessions get their last frame before it closes
    WebSockets on shutdown (it would send them 1012 without a word)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            await runtime.services.terminals.shutdown()
            await super().shutdown(sockets)

    return Server(config)


def migrate(settings: Settings) -> None:
    from dockyard.store import Database

    async def run() -> None:
        database = Database(
            settings.async_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        try:
            await database.migrate()
        finally:
            await database.close()

    asyncio.run(run())
    print("database is up to date")


def run_server(command: str) -> None:
    """``serve`` or ``migrate`` (the parser is ``parser.py``)."""
    configure_logging()
    settings = load_settings()
    if command == "serve":
        serve(settings)
    elif command == "migrate":
        migrate(settings)
