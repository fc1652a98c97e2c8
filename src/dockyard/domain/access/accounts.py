"""Accounts, custom roles, service keys and tokens, managed on behalf of principals.

Rules that hold whatever the route:
- Nobody grants more than it holds: a role, an account's role, a key's role carry only
  permissions the acting principal has, and an account stronger than the actor cannot be
  changed or deleted by it.
- At least one ``admin`` account remains; nobody deletes itself.
- An account that still owns containers is not deleted (``ACCOUNT_HAS_CONTAINERS``).
- Whatever shrinks what an account may do tells ``Authenticator.revoked``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from dockyard.domain.access.authn import Authenticator, check_password_rules
from dockyard.domain.access.credentials import (
    ServiceKeyRepository,
    TokenRepository,
)
from dockyard.domain.access.keys import KeysAndTokens
from dockyard.domain.access.permissions import BUILTIN_ROLES, Permission, Principal, not_found
from dockyard.domain.access.roles import CustomRole, RoleBook, RoleRepository, check_role_name
from dockyard.domain.containers.quotas import Quota, Quotas, Usage
from dockyard.domain.models import Account, Role, utcnow
from dockyard.domain.ports import AccountRepository
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import AuthError, ConflictError, ForbiddenError, ValidationError

log = structlog.get_logger("dockyard.accounts")

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
RESERVED_NAMES = frozenset({"me"})


class AccountStore(AccountRepository, Protocol):
    async def all(self) -> list[Account]: ...
    async def delete(self, username: str) -> None: ...
    async def count_role(self, role: str) -> int: ...
    async def with_role(self, role: str) -> list[str]: ...
    async def quota(self, username: str) -> Quota: ...
    async def set_quota(self, username: str, quota: Quota) -> None: ...


@dataclass
class AccountView:
    account: Account
    quota: Quota
    usage: Usage | None = None


def role_public(name: str, permissions: frozenset[Permission], **extra: Any) -> dict[str, Any]:
    return {"name": name, "permissions": sorted(p.value for p in permissions), **extra}


class AccountService(KeysAndTokens):
    def __init__(
        self,
        accounts: AccountStore,
        roles: RoleRepository,
        keys: ServiceKeyRepository,
        tokens: TokenRepository,
        auth: Authenticator,
        quotas: Quotas,
        *,
        token_ttl: float,
        token_max_ttl: float,
        recorder: Recorder | None = None,
    ) -> None:
        self._recorder: Recorder = recorder or NullRecorder()
        self._accounts = accounts
        self._roles = roles
        self._keys = keys
        self._tokens = tokens
        self._auth = auth
        self._book: RoleBook = auth.roles
        self.quotas = quotas
        self.token_ttl = token_ttl
        self.token_max_ttl = token_max_ttl

    # -- helpers ---------------------------------------------------------------

    def _record(self, principal: Principal, action: str, resource: str, owner: str | None) -> None:
        self._recorder.record(Change(action, resource, owner, principal.username))

    def _role_permissions(self, role: str, field: str = "role") -> frozenset[Permission]:
        if not self._book.exists(role):
            raise ValidationError(
                f"no role named {role!r}",
                code="UNKNOWN_ROLE",
                details={"field": field, "provided": role[:64]},
            )
        return self._book.permissions(role)

    async def _account(self, username: str) -> Account:
        account = await self._accounts.get(username)
        if account is None:
            raise not_found("account", username)
        return account

    def _not_stronger(self, principal: Principal, account: Account) -> None:
        if not self._book.permissions(str(account.role)) <= principal.permissions:
            raise ForbiddenError(
                f"account {account.username} holds permissions you do not",
                code="PERMISSION_DENIED",
                details={"username": account.username},
            )

    async def _keep_an_admin(self, account: Account) -> None:
        if str(account.role) == Role.ADMIN.value and await self._accounts.count_role("admin") <= 1:
            raise ConflictError(
                "the last admin account cannot lose its role or be deleted",
                code="LAST_ADMIN",
                details={"username": account.username},
            )

    # -- accounts --------------------------------------------------------------

    async def list_accounts(self, principal: Principal) -> list[AccountView]:
        principal.require(Permission.ACCOUNTS_MANAGE)
        accounts = await self._accounts.all()
        return [AccountView(a, await self._accounts.quota(a.username)) for a in accounts]

    async def view(self, principal: Principal, username: str) -> AccountView:
        if username != principal.username:
            principal.require(Permission.ACCOUNTS_MANAGE)
        account = await self._account(username)
        return AccountView(
            account, await self._accounts.quota(username), await self.quotas.usage(username)
        )

    async def create_account(
        self,
        principal: Principal,
        username: str,
        password: str,
        role: str,
        quota: Quota | None,
    ) -> AccountView:
        principal.require(Permission.ACCOUNTS_MANAGE)
        if not USERNAME.match(username) or username.lower() in RESERVED_NAMES:
            raise ValidationError(
                "username: letters, digits, '_', '.', '@', '-'; at most 64 characters",
                code="INVALID_FIELD",
                details={"field": "username", "provided": username[:64]},
            )
        check_password_rules(password)
        principal.require_all(self._role_permissions(role), f"role {role!r}")
        account = await self._auth.add_account(username, password, role)
        account.password_changed = True  # only the bootstrap admin follows APP_PASS
        await self._accounts.save(account)
        if quota is not None:
            await self._accounts.set_quota(username, quota)
        log.info("account.created", user=username, role=role, by=principal.username)
        self._record(principal, "account.created", username, owner=username)
        return AccountView(account, quota or Quota())

    async def update_account(
        self,
        principal: Principal,
        username: str,
        *,
        role: str | None = None,
        password: str | None = None,
        quota: Quota | None = None,
    ) -> AccountView:
        principal.require(Permission.ACCOUNTS_MANAGE)
        account = await self._account(username)
        self._not_stronger(principal, account)
        shrunk = False
        if role is not None and role != str(account.role):
            principal.require_all(self._role_permissions(role), f"role {role!r}")
            await self._keep_an_admin(account)
            shrunk = not self._book.permissions(str(account.role)) <= self._book.permissions(role)
            account.role = role
        if password is not None:
            check_password_rules(password)
            account.password_hash = await self._auth.hash_password(password)
            account.password_changed = True
            await self._tokens.revoke(utcnow(), owner=username)
            shrunk = True
        await self._accounts.save(account)
        if quota is not None:
            await self._accounts.set_quota(username, quota)
        self._auth.forget(username)
        if shrunk:
            await self._auth.revoked(username)
        log.info("account.updated", user=username, by=principal.username)
        return AccountView(account, await self._accounts.quota(username))

    async def delete_account(self, principal: Principal, username: str) -> None:
        principal.require(Permission.ACCOUNTS_MANAGE)
        account = await self._account(username)
        if username == principal.username:
            raise ConflictError(
                "an account cannot delete itself", code="CANNOT_DELETE_SELF", details={}
            )
        self._not_stronger(principal, account)
        await self._keep_an_admin(account)
        usage = await self.quotas.usage(username)
        if usage.containers:
            raise ConflictError(
                f"account {username} still owns {usage.containers} container(s); delete them first",
                code="ACCOUNT_HAS_CONTAINERS",
                details={"username": username, "containers": usage.containers},
            )
        for key in await self._keys.of_owner(username):
            await self._keys.delete(key.id)
        await self._tokens.revoke(utcnow(), owner=username)
        await self._accounts.delete(username)
        await self._auth.revoked(username)
        log.info("account.deleted", user=username, by=principal.username)

    async def change_own_password(
        self, principal: Principal, current: str, new: str, source: str
    ) -> None:
        """Needs the current password whatever the credential (a stolen token is not
        enough); every token of the account is revoked."""
        account = await self._account(principal.username)
        if not await self._auth.verify_password(account, current, source):
            raise AuthError("the current password is wrong", code="INVALID_CREDENTIALS")
        check_password_rules(new, "new_password")
        account.password_hash = await self._auth.hash_password(new)
        account.password_changed = True
        await self._accounts.save(account)
        await self._tokens.revoke(utcnow(), owner=account.username)
        await self._auth.revoked(account.username)
        log.info("account.password_changed", user=account.username)

    # -- roles -----------------------------------------------------------------

    def list_roles(self) -> list[dict[str, Any]]:
        out = [role_public(name, perms, builtin=True) for name, perms in BUILTIN_ROLES.items()]
        for role in self._book.all_custom():
            out.append(
                role_public(
                    role.name,
                    role.permissions,
                    builtin=False,
                    description=role.description,
                    created_by=role.created_by,
                )
            )
        return out

    def get_role(self, name: str) -> dict[str, Any]:
        if name in BUILTIN_ROLES:
            return role_public(name, BUILTIN_ROLES[name], builtin=True)
        role = self._book.custom(name)
        if role is None:
            raise not_found("role", name)
        return role_public(
            name,
            role.permissions,
            builtin=False,
            description=role.description,
            created_by=role.created_by,
        )

    def _custom(self, name: str) -> CustomRole:
        if name in BUILTIN_ROLES:
            raise ConflictError(
                f"the built-in role {name!r} cannot be changed",
                code="ROLE_BUILTIN",
                details={"name": name},
            )
        role = self._book.custom(name)
        if role is None:
            raise not_found("role", name)
        return role

    async def create_role(
        self,
        principal: Principal,
        name: str,
        permissions: frozenset[Permission],
        description: str,
    ) -> dict[str, Any]:
        principal.require(Permission.ACCOUNTS_MANAGE)
        check_role_name(name)
        if self._book.exists(name):
            raise ConflictError(f"role {name!r} exists", code="ROLE_EXISTS", details={"name": name})
        principal.require_all(permissions, f"role {name!r}")
        role = CustomRole(
            name=name,
            permissions=permissions,
            description=description,
            created_by=principal.username,
        )
        await self._roles.insert(role)
        self._book.remember(role)
        log.info("role.created", role=name, by=principal.username)
        self._record(principal, "role.created", name, owner=None)
        return self.get_role(name)

    async def update_role(
        self,
        principal: Principal,
        name: str,
        *,
        permissions: frozenset[Permission] | None,
        description: str | None,
    ) -> dict[str, Any]:
        principal.require(Permission.ACCOUNTS_MANAGE)
        role = self._custom(name)
        principal.require_all(role.permissions, f"role {name!r}")
        updated = role.model_copy()
        if permissions is not None:
            principal.require_all(permissions, f"role {name!r}")
            updated.permissions = permissions
        if description is not None:
            updated.description = description
        await self._roles.save(updated)
        self._book.remember(updated)
        self._auth.forget_all()
        if not role.permissions <= updated.permissions:
            for username in await self._holders(name):
                await self._auth.revoked(username)
        log.info("role.updated", role=name, by=principal.username)
        return self.get_role(name)

    async def _holders(self, role: str) -> set[str]:
        holders = set(await self._accounts.with_role(role))
        holders.update(key.owner for key in await self._keys.using_role(role))
        return holders

    async def delete_role(self, principal: Principal, name: str) -> None:
        principal.require(Permission.ACCOUNTS_MANAGE)
        role = self._custom(name)
        principal.require_all(role.permissions, f"role {name!r}")
        holders = await self._holders(name)
        if holders:
            raise ConflictError(
                f"role {name!r} is held by accounts or service keys",
                code="ROLE_IN_USE",
                details={"name": name, "holders": sorted(holders)[:20]},
            )
        await self._roles.delete(name)
        self._book.forget(name)
        log.info("role.deleted", role=name, by=principal.username)
