"""Request dependencies: the app's services and the authenticated principal."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from dockyard.domain.access import Principal
from dockyard.domain.auth import Authenticator
from dockyard.domain.containers import ContainerService
from dockyard.domain.files import FileService
from dockyard.domain.reconcile import Reconciler
from dockyard.errors import AuthError


@dataclass
class Services:
    """What routers may use; built once by ``app.create_app``."""

    containers: ContainerService
    files: FileService
    auth: Authenticator
    reconciler: Reconciler
    compose_version: str
    engine_version: Callable[[], Awaitable[str]]
    database_ping: Callable[[], Awaitable[bool]]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("credentials required", code="AUTH_REQUIRED")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthError("unsupported authorization scheme", code="UNSUPPORTED_SCHEME")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed Basic credentials", code="MALFORMED_CREDENTIALS") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthError("malformed Basic credentials", code="MALFORMED_CREDENTIALS")
    services = get_services(request)
    principal = await services.auth.basic(username, password, client_address(request))
    request.state.user = principal.username
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
