"""Who may do what: permissions, roles and ownership (SPEC §3). Deny by default.

A ``Principal`` carries its *effective* permission set: the permissions of its account's
role, narrowed by the credential it used (a service key with a narrower role, a token
issued through such a key). Anything not in the set is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from dockyard.domain.models import Role
from dockyard.errors import ForbiddenError, NotFoundError, ValidationError


class Permission(StrEnum):
    CONTAINERS_READ = "containers:read"
    CONTAINERS_CREATE = "containers:create"
    CONTAINERS_UPDATE = "containers:update"
    CONTAINERS_CONTROL = "containers:control"
    CONTAINERS_DELETE = "containers:delete"
    CONTAINERS_EXEC = "containers:exec"
    FILES_READ = "files:read"
    FILES_WRITE = "files:write"
    IMAGES_READ = "images:read"
    IMAGES_PULL = "images:pull"
    IMAGES_BUILD = "images:build"
    IMAGES_DELETE = "images:delete"
    REGISTRIES_READ = "registries:read"  # one's own registry credentials (and shared ones)
    REGISTRIES_MANAGE = "registries:manage"  # add and remove one's own
    WEBHOOKS_MANAGE = "webhooks:manage"  # one's own outgoing webhooks and webhook keys
    SYSTEM_READ = "system:read"
    KEYS_MANAGE = "keys:manage"  # one's own service keys
    ACCOUNTS_MANAGE = "accounts:manage"  # every account, role and quota
    AUDIT_READ = "audit:read"
    ENGINES_READ = "engines:read"  # the engines, their health and the cluster's capacity
    ENGINES_MANAGE = "engines:manage"  # add, change, drain and remove engines
    RESOURCES_ALL = "resources:all"  # act on every account's resources, not only one's own


# Engines are the operators' business: admins by default; a custom role (an "operator")
# may be given engines:read.
_ADMIN_ONLY = frozenset(
    {
        Permission.ACCOUNTS_MANAGE,
        Permission.AUDIT_READ,
        Permission.RESOURCES_ALL,
        Permission.ENGINES_READ,
        Permission.ENGINES_MANAGE,
    }
)
BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    Role.ADMIN.value: frozenset(Permission),
    Role.USER.value: frozenset(Permission) - _ADMIN_ONLY,
    Role.VIEWER.value: frozenset(
        {
            Permission.CONTAINERS_READ,
            Permission.FILES_READ,
            Permission.SYSTEM_READ,
            Permission.IMAGES_READ,
        }
    ),
}
# The same, keyed by the enum (older callers).
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {r: BUILTIN_ROLES[r.value] for r in Role}


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Permission names from a client or the store; an unknown one is an error."""
    out: set[Permission] = set()
    for name in names:
        try:
            out.add(Permission(name))
        except ValueError:
            raise ValidationError(
                f"unknown permission {name!r}",
                code="UNKNOWN_PERMISSION",
                details={
                    "field": "permissions",
                    "provided": str(name)[:64],
                    "allowed": [p.value for p in Permission],
                },
            ) from None
    return frozenset(out)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request (or one WebSocket session)."""

    username: str
    role: str
    # None: exactly the built-in role's permissions (an unknown role has none).
    granted: frozenset[Permission] | None = None
    via: str = "basic"  # basic | key | token | ticket
    credential_id: str | None = None  # the service key's or token's id
    expires_at: float | None = None  # epoch seconds, when the credential itself expires

    @property
    def permissions(self) -> frozenset[Permission]:
        if self.granted is not None:
            return self.granted
        return BUILTIN_ROLES.get(str(self.role), frozenset())

    @property
    def is_admin(self) -> bool:
        """Acts on every account's resources (admins; never a narrowed credential)."""
        return Permission.RESOURCES_ALL in self.permissions

    @property
    def credential(self) -> str:
        """How the audit names the credential: ``basic``, ``key:<id>``, ``token:<id>``."""
        return f"{self.via}:{self.credential_id}" if self.credential_id else self.via

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise ForbiddenError(
                f"'{self.username}' lacks the permission '{permission.value}'",
                code="PERMISSION_DENIED",
                details={"permission": permission.value},
            )

    def require_all(self, permissions: Iterable[Permission], what: str) -> None:
        """No one grants more than it holds: ``what`` may carry only our permissions."""
        missing = sorted(p.value for p in set(permissions) - self.permissions)
        if missing:
            raise ForbiddenError(
                f"{what} would carry permissions '{self.username}' does not hold",
                code="PERMISSION_DENIED",
                details={"missing": missing},
            )

    def sees(self, owner: str) -> bool:
        return owner == self.username or self.is_admin

    def narrowed(self, permissions: frozenset[Permission]) -> Principal:
        """The same caller with at most ``permissions``."""
        return Principal(
            username=self.username,
            role=self.role,
            granted=self.permissions & permissions,
            via=self.via,
            credential_id=self.credential_id,
            expires_at=self.expires_at,
        )


def not_found(kind: str, ident: str) -> NotFoundError:
    """A resource that does not exist and one that belongs to someone else look alike."""
    return NotFoundError(
        f"{kind} {ident} not found", code=f"{kind.upper()}_NOT_FOUND", details={"id": ident}
    )
