"""Roles: the built-in ``admin``, ``user`` and ``viewer``, and custom roles from the store.

Roles are few and read on every login, so ``RoleBook`` keeps the custom ones in memory:
loaded at start-up, changed only through ``AccountService`` (which writes the store first).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from dockyard.domain.access.permissions import BUILTIN_ROLES, Permission
from dockyard.domain.models import utcnow
from dockyard.errors import ValidationError

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")


class CustomRole(BaseModel):
    name: str
    permissions: frozenset[Permission]
    description: str = ""
    created_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RoleRepository(Protocol):
    async def all(self) -> list[CustomRole]: ...
    async def insert(self, role: CustomRole) -> None: ...
    async def save(self, role: CustomRole) -> None: ...
    async def delete(self, name: str) -> None: ...


def check_role_name(name: str) -> str:
    if not ROLE_NAME.match(name):
        raise ValidationError(
            "role name: lower-case letters, digits, '_' and '-'; at most 32 characters",
            code="INVALID_FIELD",
            details={"field": "name", "provided": name[:64]},
        )
    return name


class RoleBook:
    """Role name -> permissions; an unknown name has none (deny by default)."""

    def __init__(self, repo: RoleRepository | None = None) -> None:
        self._repo = repo
        self._custom: dict[str, CustomRole] = {}

    async def load(self) -> None:
        if self._repo is not None:
            self._custom = {role.name: role for role in await self._repo.all()}

    def permissions(self, name: str) -> frozenset[Permission]:
        builtin = BUILTIN_ROLES.get(name)
        if builtin is not None:
            return builtin
        custom = self._custom.get(name)
        return custom.permissions if custom else frozenset()

    def exists(self, name: str) -> bool:
        return name in BUILTIN_ROLES or name in self._custom

    def custom(self, name: str) -> CustomRole | None:
        return self._custom.get(name)

    def all_custom(self) -> list[CustomRole]:
        return sorted(self._custom.values(), key=lambda r: r.name)

    def remember(self, role: CustomRole) -> None:
        self._custom[role.name] = role

    def forget(self, name: str) -> None:
        self._custom.pop(name, None)
