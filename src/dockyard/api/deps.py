"""Request dependencies: the app's services and the authenticated, authorized principal."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request, WebSocket
from starlette.requests import HTTPConnection

from dockyard.api.authz import authorize
from dockyard.domain.access.accounts import AccountService
from dockyard.domain.access.audit import AuditTrail
from dockyard.domain.access.authn import Authenticator
from dockyard.domain.access.permissions import Principal
from dockyard.domain.automation.hub import HubService
from dockyard.domain.automation.hubkeys import WebhookKeyService
from dockyard.domain.automation.webhooks import WebhookService
from dockyard.domain.containers.quotas import Quotas
from dockyard.domain.containers.reconcile import Reconciler
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.service import EngineService
from dockyard.domain.files.service import FileService
from dockyard.domain.idempotency import Idempotency
from dockyard.domain.images.builds import BuildService
from dockyard.domain.images.images import ImageService
from dockyard.domain.images.jobs import JobService
from dockyard.domain.images.pulls import PullService
from dockyard.domain.images.registries import RegistryService
from dockyard.domain.observe.events import EventService
from dockyard.domain.observe.logs import LogService
from dockyard.domain.observe.metrics import MetricsService
from dockyard.domain.terminal.service import TerminalService
from dockyard.errors import AuthError, ForbiddenError


@dataclass
class Services:
    """What routers may use; built once by ``app.create_app``."""

    containers: ContainerService
    files: FileService
    logs: LogService
    metrics: MetricsService
    events: EventService
    terminals: TerminalService
    auth: Authenticator
    reconciler: Reconciler
    compose_version: str
    engine_version: Callable[[], Awaitable[str]]
    database_ping: Callable[[], Awaitable[bool]]
    accounts: AccountService
    quotas: Quotas
    audit: AuditTrail
    idempotency: Idempotency
    images: ImageService
    registries: RegistryService
    jobs: JobService
    builds: BuildService
    pulls: PullService
    webhooks: WebhookService
    webhookkeys: WebhookKeyService
    hub: HubService
    engines: EngineService
    # The duties this process runs now (all of them, unless several processes share the
    # database: then those whose lease it holds; domain/leases.py), set by wiring.
    duties: Callable[[], list[str]] = field(default=lambda: [])


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed Basic credentials", code="MALFORMED_CREDENTIALS") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthError("malformed Basic credentials", code="MALFORMED_CREDENTIALS")
    return username, password


async def authenticate(conn: HTTPConnection) -> Principal:
    """Who is calling: Basic, ``X-Service-Key`` or ``Authorization: Bearer`` (one of them)."""
    auth: Authenticator = conn.app.state.services.auth
    source = client_address(conn)
    key = conn.headers.get("x-service-key")
    header = conn.headers.get("authorization")
    if key is not None and header is not None:
        raise AuthError(
            "send one credential: Authorization or X-Service-Key", code="MALFORMED_CREDENTIALS"
        )
    if key is not None:
        principal = await auth.service_key(key.strip(), source)
    elif not header:
        raise AuthError("credentials required", code="AUTH_REQUIRED")
    else:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            principal = await auth.basic(*_basic(value), source)
        elif scheme == "bearer":
            principal = await auth.bearer(value.strip(), source)
        else:
            raise AuthError("unsupported authorization scheme", code="UNSUPPORTED_SCHEME")
    _remember(conn, principal)
    return principal


def _remember(conn: HTTPConnection, principal: Principal) -> None:
    # For the action log and the audit trail (api/middleware.py).
    conn.state.user = principal.username
    conn.state.credential = principal.credential


async def get_principal(request: Request) -> Principal:
    """The authenticated caller, allowed by the route's declared permission."""
    principal = await authenticate(request)
    authorize(principal, request.method, getattr(request.scope.get("route"), "path", None))
    return principal


async def get_ws_principal(websocket: WebSocket) -> Principal:
    """The principal of a WebSocket: the same headers as HTTP, or ``?ticket=`` from
    ``POST /auth/ws-ticket`` (browsers). A present ``Origin`` must be the service's own
    (the ``Host`` the client connected to) or one of ``WS_ALLOWED_ORIGINS``. Raises
    ``AuthError`` (401) or ``ForbiddenError`` (403) before anything is accepted."""
    check_origin(websocket)
    ticket = websocket.query_params.get("ticket")
    if ticket is not None:
        auth: Authenticator = websocket.app.state.services.auth
        principal = auth.redeem_ticket(ticket)
        _remember(websocket, principal)
    else:
        principal = await authenticate(websocket)
    authorize(principal, "WS", getattr(websocket.scope.get("route"), "path", None))
    return principal


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def check_origin(conn: HTTPConnection) -> None:
    origin = conn.headers.get("origin")
    if origin is None:
        return  # not a browser: nothing to check
    allowed: frozenset[str] = conn.app.state.settings.allowed_origins
    if origin.rstrip("/").lower() in allowed or _same_host(origin, conn.headers.get("host")):
        return
    raise ForbiddenError(
        "this WebSocket's Origin is not the service's own",
        code="ORIGIN_DENIED",
        details={"origin": origin[:200]},
    )


def _same_host(origin: str, host: str | None) -> bool:
    if not host:
        return False
    try:
        parts = urlsplit(origin)
        wanted = urlsplit(f"//{host}")
        default = _DEFAULT_PORTS.get(parts.scheme.lower())
        if default is None or not parts.hostname or not wanted.hostname:
            return False
        return parts.hostname.lower() == wanted.hostname.lower() and (parts.port or default) == (
            wanted.port or default
        )
    except ValueError:  # a malformed port
        return False


@dataclass(frozen=True)
class PageParams:
    """``limit`` and ``cursor`` of a list route. The domain checks the limit
    (``paging.check_limit``: ``400 / INVALID_LIMIT``), so it is not constrained here."""

    limit: int
    cursor: str | None


def paged(*, default: int, maximum: int) -> Any:
    """The ``PageParams`` dependency of a list with this default and maximum limit:
    ``Annotated[PageParams, paged(default=50, maximum=500)]``."""

    async def page_params(  # async: no thread-pool hop for a sync dependency
        limit: int = Query(
            default=default,
            description=f"items per page, 1 to {maximum}",
            json_schema_extra={"minimum": 1, "maximum": maximum},
        ),
        cursor: str | None = Query(
            default=None, description="the next_cursor of the previous page (opaque)"
        ),
    ) -> PageParams:
        return PageParams(limit, cursor)

    return Depends(page_params)


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
