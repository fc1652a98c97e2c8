"""Credentials as request headers (SPEC §3): Basic, a service key, or a bearer token."""

from __future__ import annotations

import base64
from typing import NamedTuple


class ServiceKey(NamedTuple):
    """A key from ``POST /servicekeys`` (``dyk_…``), sent as ``X-Service-Key``."""

    key: str


class BearerToken(NamedTuple):
    """A token from ``POST /auth/token`` (``dyt.…``), sent as ``Authorization: Bearer``."""

    token: str


Auth = tuple[str, str] | ServiceKey | BearerToken | str | None


def auth_headers(auth: Auth) -> dict[str, str]:
    """The headers for ``auth``: ``(user, password)`` is Basic; a bare string is a service
    key when it starts with ``dyk_``, else a bearer token; None sends nothing."""
    if auth is None:
        return {}
    if isinstance(auth, str):
        auth = ServiceKey(auth) if auth.startswith("dyk_") else BearerToken(auth)
    if isinstance(auth, ServiceKey):
        return {"X-Service-Key": auth.key}
    if isinstance(auth, BearerToken):
        return {"Authorization": f"Bearer {auth.token}"}
    user, password = auth
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}
