"""Service keys and bearer tokens of an account (``AccountService`` inherits these).

A key or token acts as its owner, never wider: a ``role`` it names must be one whose
permissions its maker holds all of (``PERMISSION_DENIED`` otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from dockyard.domain.access.authn import Authenticator
from dockyard.domain.access.credentials import (
    IssuedToken,
    ServiceKey,
    ServiceKeyRepository,
    TokenRepository,
    hash_secret,
    new_key,
)
from dockyard.domain.access.permissions import Permission, Principal, not_found
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.models import Account, utcnow
from dockyard.errors import ValidationError

log = structlog.get_logger("dockyard.accounts")

MAX_KEY_TTL = 10 * 365 * 86400


class KeysAndTokens:
    """The key and token part of ``AccountService``; its state and helpers live there."""

    _keys: ServiceKeyRepository
    _tokens: TokenRepository
    _auth: Authenticator
    _book: RoleBook
    token_ttl: float
    token_max_ttl: float

    def _role_permissions(self, role: str, field: str = "role") -> frozenset[Permission]:
        raise NotImplementedError

    async def _account(self, username: str) -> Account:
        raise NotImplementedError

    def _record(self, principal: Principal, action: str, resource: str, owner: str | None) -> None:
        raise NotImplementedError

    # -- service keys ----------------------------------------------------------

    async def create_key(
        self,
        principal: Principal,
        *,
        description: str,
        role: str | None,
        expires_in: float | None,
    ) -> tuple[str, ServiceKey]:
        """A new key acting as ``principal``'s account; the secret is returned once."""
        principal.require(Permission.KEYS_MANAGE)
        account = await self._account(principal.username)
        carried = self._book.permissions(str(account.role))
        if role is not None:
            wanted = self._role_permissions(role)
            principal.require_all(wanted, f"role {role!r}")  # never wider than the caller
            carried = carried & wanted
        principal.require_all(carried, "the service key")
        expires_at: datetime | None = None
        if expires_in is not None:
            if not 0 < expires_in <= MAX_KEY_TTL:
                raise ValidationError(
                    f"expires_in must be between 1 and {MAX_KEY_TTL} seconds",
                    code="INVALID_FIELD",
                    details={"field": "expires_in", "provided": expires_in},
                )
            expires_at = utcnow() + timedelta(seconds=expires_in)
        if principal.expires_at is not None:
            # A key made with an expiring credential does not outlive it.
            limit = datetime.fromtimestamp(principal.expires_at, UTC)
            expires_at = min(expires_at, limit) if expires_at else limit
        secret = new_key()
        key = ServiceKey(
            owner=principal.username,
            key_hash=hash_secret(secret),
            prefix=secret[:10],
            description=description,
            role=role,
            expires_at=expires_at,
        )
        await self._keys.insert(key)
        log.info("servicekey.created", key_id=key.id, owner=key.owner, role=role)
        self._record(principal, "servicekey.created", key.id, owner=key.owner)
        return secret, key

    async def list_keys(self, principal: Principal, owner: str | None) -> list[ServiceKey]:
        principal.require(Permission.KEYS_MANAGE)
        if not principal.is_admin:
            owner = principal.username
        return await self._keys.of_owner(owner)

    async def revoke_key(
        self, principal: Principal, key_id: str | None = None, *, secret: str | None = None
    ) -> None:
        principal.require(Permission.KEYS_MANAGE)
        key = None
        if secret is not None:
            key = await self._keys.by_hash(hash_secret(secret))
        elif key_id is not None:
            key = await self._keys.get(key_id)
        shown = key_id or (secret[:10] if secret else "")
        if key is None or not principal.sees(key.owner):
            raise not_found("servicekey", shown)
        await self._keys.delete(key.id)
        await self._tokens.revoke(utcnow(), key_id=key.id)
        await self._auth.revoked(key.owner)
        log.info("servicekey.revoked", key_id=key.id, owner=key.owner, by=principal.username)

    # -- tokens ----------------------------------------------------------------

    async def issue_token(
        self, principal: Principal, *, expires_in: float | None, role: str | None
    ) -> tuple[str, IssuedToken]:
        ttl = self.token_ttl if expires_in is None else expires_in
        if not 0 < ttl <= self.token_max_ttl:
            raise ValidationError(
                f"expires_in must be between 1 and {int(self.token_max_ttl)} seconds",
                code="INVALID_FIELD",
                details={"field": "expires_in", "provided": expires_in},
            )
        token, issued = await self._auth.issue_token(principal, ttl, role=role)
        log.info("token.issued", token_id=issued.id, owner=issued.owner)
        self._record(principal, "token.issued", issued.id, owner=issued.owner)
        return token, issued

    async def list_tokens(self, principal: Principal) -> list[IssuedToken]:
        return await self._tokens.active_of(principal.username, utcnow())

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        token = await self._tokens.get(token_id)
        if token is None or token.revoked_at is not None or not principal.sees(token.owner):
            raise not_found("token", token_id)
        await self._tokens.revoke(utcnow(), token_id=token_id)
        await self._auth.revoked(token.owner)
        log.info("token.revoked", token_id=token_id, owner=token.owner, by=principal.username)
