"""Who may do what: roles, permissions and ownership (SPEC §3). Deny by default."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dockyard.domain.models import Role
from dockyard.errors import ForbiddenError, NotFoundError


class Permission(StrEnum):
    CONTAINERS_READ = "containers:read"
    CONTAINERS_CREATE = "containers:create"
    CONTAINERS_UPDATE = "containers:update"
    CONTAINERS_CONTROL = "containers:control"
    CONTAINERS_DELETE = "containers:delete"
    FILES_READ = "files:read"
    FILES_WRITE = "files:write"
    SYSTEM_READ = "system:read"


_USER = frozenset(Permission)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.USER: _USER,
    Role.VIEWER: frozenset(
        {Permission.CONTAINERS_READ, Permission.FILES_READ, Permission.SYSTEM_READ}
    ),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    username: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise ForbiddenError(
                f"role '{self.role.value}' lacks the permission '{permission.value}'",
                code="PERMISSION_DENIED",
                details={"permission": permission.value},
            )

    def sees(self, owner: str) -> bool:
        return self.is_admin or owner == self.username


def not_found(kind: str, ident: str) -> NotFoundError:
    """A resource that does not exist and one that belongs to someone else look alike."""
    return NotFoundError(
        f"{kind} {ident} not found", code=f"{kind.upper()}_NOT_FOUND", details={"id": ident}
    )
