"""Dockyard's Python SDK: typed sync and async clients of the HTTP and WebSocket API.

    from dockyard.client import Dockyard

    with Dockyard("http://localhost:8080", auth=("admin", "secret")) as dy:
        box = dy.containers.create("python:3.12-slim", start=True)
        for c in dy.containers.list(status="running"):
            print(c.cuid, c.image)

``AsyncDockyard`` is the same API with ``await``/``async for``, plus ``terminal()``.
Errors are one tree (``dockyard.client.errors``); models are the server's own response
models (``dockyard.client.models``). See docs/sdk.md.

``import dockyard.client`` is cheap: the HTTP stack (httpx, websockets) loads when a
client is first named, and the models when an answer is first parsed. It never imports
the server's stack (FastAPI, SQLAlchemy, Alembic, aiodocker, uvicorn).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dockyard.client.auth import BearerToken, ServiceKey
from dockyard.client.errors import (
    ApiError,
    Conflict,
    DockyardError,
    Forbidden,
    InsufficientStorage,
    InvalidState,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from dockyard.client.retry import RetryPolicy

if TYPE_CHECKING:
    from dockyard.client._async_client import AsyncDockyard
    from dockyard.client._sync_client import Dockyard
    from dockyard.client.progress import JobLine
    from dockyard.client.terminal import STDERR, STDOUT, Output, Terminal

_LAZY = {
    "Dockyard": "dockyard.client._sync_client",
    "AsyncDockyard": "dockyard.client._async_client",
    "Terminal": "dockyard.client.terminal",
    "JobLine": "dockyard.client.progress",
    "Output": "dockyard.client.terminal",
    "STDOUT": "dockyard.client.terminal",
    "STDERR": "dockyard.client.terminal",
}

__all__ = [
    "STDERR",
    "STDOUT",
    "ApiError",
    "AsyncDockyard",
    "BearerToken",
    "Conflict",
    "Dockyard",
    "DockyardError",
    "Forbidden",
    "InsufficientStorage",
    "InvalidState",
    "JobLine",
    "MethodNotAllowed",
    "NotFound",
    "Output",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "ServiceKey",
    "Terminal",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationFailed",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dockyard.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
