"""Registry credentials (``/registries``): per account, admins may share one with everyone.

The password (or token) is sealed by a ``SecretBox`` before it reaches the store, bound to
its row (id, owner, server, username), and opened only to hand a ``RegistryAuth`` to a
pull or a push. It is never returned, logged or put in an error. ``RegistryService`` is
also the ``Credentials`` of pulls, builds and pushes: stored credentials are used only
for the registry they were saved for, so a ref naming another registry never receives
them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.images.ports import RegistryAuth
from dockyard.domain.images.refs import DEFAULT_REGISTRY, registry_of, same_server
from dockyard.domain.models import utcnow
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import ForbiddenError, ValidationError

_SERVER = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-f:]+\](:[0-9]{1,5})?$"
)
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


class SecretBox(Protocol):
    """Seals secrets at rest (adapters/crypto.py ``AesGcmBox``)."""

    def seal(self, plain: bytes, context: bytes) -> bytes: ...
    def open(self, sealed: bytes, context: bytes) -> bytes: ...


@dataclass(frozen=True)
class StoredRegistry:
    """A row of ``registries``: ``secret`` is sealed, never the password itself."""

    id: str
    owner: str
    shared: bool
    server: str
    username: str
    secret: bytes
    created_at: datetime

    @property
    def context(self) -> bytes:
        return f"{self.id}\0{self.owner}\0{self.server}\0{self.username}".encode()


class RegistryRepository(Protocol):
    async def insert(self, registry: StoredRegistry) -> None: ...
    async def get(self, registry_id: str) -> StoredRegistry | None: ...
    async def visible_to(self, owner: str | None) -> list[StoredRegistry]:
        """``owner``'s own and the shared ones (everyone's for None), oldest first."""
        ...

    async def delete(self, registry_id: str) -> None: ...


def normalize_server(server: str) -> str:
    """``https://Registry.Example.com/`` → ``registry.example.com``; Hub aliases → docker.io."""
    value = server.strip().lower()
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    value = value.rstrip("/")
    if value.endswith("/v1") or value.endswith("/v2"):
        value = value[:-3]
    if value in _HUB_ALIASES:
        value = DEFAULT_REGISTRY
    if not _SERVER.match(value) or len(value) > 255:
        raise ValidationError(
            "server must be a registry host, with an optional port (registry.example.com:5000)",
            code="INVALID_REGISTRY_SERVER",
            details={"field": "server", "provided": server[:200]},
        )
    return value


class RegistryService:
    """``/registries`` and the ``Credentials`` of pulls and pushes."""

    def __init__(
        self, repo: RegistryRepository, box: SecretBox, recorder: Recorder | None = None
    ) -> None:
        self._repo = repo
        self._box = box
        self._recorder = recorder or NullRecorder()

    async def list(self, principal: Principal) -> list[StoredRegistry]:
        """The caller's and the shared ones (admins: everyone's)."""
        principal.require(Permission.REGISTRIES_READ)
        return await self._repo.visible_to(None if principal.is_admin else principal.username)

    async def create(
        self, principal: Principal, *, server: str, username: str, password: str, shared: bool
    ) -> StoredRegistry:
        principal.require(Permission.REGISTRIES_MANAGE)
        if shared and not principal.is_admin:
            raise ForbiddenError(
                "only admins share registry credentials with everyone",
                code="SHARED_REGISTRY_ADMIN_ONLY",
                details={"field": "shared"},
            )
        draft = StoredRegistry(
            id="r" + uuid.uuid4().hex,
            owner=principal.username,
            shared=shared,
            server=normalize_server(server),
            username=username,
            secret=b"",
            created_at=utcnow(),
        )
        sealed = self._box.seal(password.encode(), draft.context)
        stored = StoredRegistry(**{**draft.__dict__, "secret": sealed})
        await self._repo.insert(stored)
        self._record("registry.created", stored, principal.username)
        return stored

    async def delete(self, principal: Principal, registry_id: str) -> None:
        principal.require(Permission.REGISTRIES_MANAGE)
        stored = await self._visible(principal.username, registry_id, admin=principal.is_admin)
        if stored.owner != principal.username and not principal.is_admin:
            raise ForbiddenError(
                "a shared registry is removed by an admin",
                code="SHARED_REGISTRY_ADMIN_ONLY",
                details={"id": registry_id},
            )
        await self._repo.delete(registry_id)
        self._record("registry.deleted", stored, principal.username)

    async def resolve(
        self,
        owner: str,
        ref: str,
        *,
        registry_id: str | None = None,
        inline: RegistryAuth | None = None,
    ) -> RegistryAuth | None:
        """``Credentials``: inline ones, the stored ``registry_id`` (``owner``'s own or a
        shared one, for the registry of ``ref`` only), or ``owner``'s (then a shared one)
        saved for the registry of ``ref``; None when there are none."""
        server = registry_of(ref)
        if inline is not None:
            return RegistryAuth(server, inline.username, inline.password)
        if registry_id is not None:
            stored = await self._visible(owner, registry_id, admin=False)
            if not same_server(stored.server, server):
                raise ValidationError(
                    f"registry {registry_id} holds credentials for {stored.server}, "
                    f"not for {server}",
                    code="REGISTRY_MISMATCH",
                    details={"field": "registry", "registry": stored.server, "image": server},
                )
            return self._auth(stored)
        candidates = [
            r for r in await self._repo.visible_to(owner) if same_server(r.server, server)
        ]
        candidates.sort(key=lambda r: (r.owner != owner, r.created_at))
        return self._auth(candidates[0]) if candidates else None

    async def _visible(self, owner: str, registry_id: str, *, admin: bool) -> StoredRegistry:
        stored = await self._repo.get(registry_id)
        if stored is None or not (admin or stored.owner == owner or stored.shared):
            raise not_found("registry", registry_id)
        return stored

    def _auth(self, stored: StoredRegistry) -> RegistryAuth:
        password = self._box.open(stored.secret, stored.context).decode()
        return RegistryAuth(stored.server, stored.username, password)

    def _record(self, action: str, stored: StoredRegistry, actor: str) -> None:
        self._recorder.record(
            Change(
                action=action,
                resource=stored.id,
                owner=stored.owner,
                actor=actor,
                details={"server": stored.server, "shared": stored.shared},
            )
        )
