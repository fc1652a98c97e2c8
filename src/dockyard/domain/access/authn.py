"""Checking credentials (SPEC §3): Basic, service keys, bearer tokens, WebSocket tickets.

argon2 is deliberately slow (tens of ms); a verified credential is cached for a short
while, keyed by an HMAC under a per-process random key (passwords) or by the hash or id
of the key or token, so that a repeated request costs microseconds and the cache never
holds a secret. Anything that changes what a principal may do (a password change, a role
change, a revoked key or token, a deleted account) drops its cached entries and tells the
revocation listeners, so that open WebSocket sessions of that account can be closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from dockyard.domain.access.credentials import (
    IssuedToken,
    ServiceKeyRepository,
    TicketBook,
    TokenRepository,
    TokenSigner,
    hash_secret,
)
from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.models import Account, Role, utcnow
from dockyard.domain.ports import AccountRepository
from dockyard.errors import AuthError, ConflictError, RateLimitedError, ValidationError

log = structlog.get_logger("dockyard.auth")

_CACHE_MAX = 10_000
TOUCH_EVERY = 60.0  # seconds between two writes of a service key's last_used_at
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

RevocationListener = Callable[[str], Awaitable[None] | None]


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...


class LoginLimiter(Protocol):
    """Counts failed logins per key (source address, account)."""

    async def failed(self, key: str) -> None: ...
    async def retry_after(self, key: str) -> int | None: ...


def check_password_rules(password: str, field: str = "password") -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            f"{field} must have {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="WEAK_PASSWORD",
            details={"field": field},
        )


class Authenticator:
    def __init__(
        self,
        accounts: AccountRepository,
        hasher: PasswordHasher,
        limiter: LoginLimiter,
        cache_ttl: float,
        *,
        roles: RoleBook | None = None,
        keys: ServiceKeyRepository | None = None,
        tokens: TokenRepository | None = None,
        signer: TokenSigner | None = None,
    ) -> None:
        self._accounts = accounts
        self._hasher = hasher
        self._limiter = limiter
        self._cache_ttl = cache_ttl
        self.roles = roles or RoleBook()
        self._keys = keys
        self._tokens = tokens
        self._signer = signer
        self.tickets = TicketBook()
        self._cache: dict[bytes | str, tuple[Principal, float]] = {}
        self._key = secrets.token_bytes(32)
        # Unknown users are checked against this, so both failures take as long.
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))
        self._listeners: list[RevocationListener] = []
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- the cache -------------------------------------------------------------

    def _cached(self, key: bytes | str) -> Principal | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        principal, until = hit
        if until <= time.monotonic() or (
            principal.expires_at is not None and principal.expires_at <= time.time()
        ):
            self._cache.pop(key, None)
            return None
        return principal

    def _remember(self, key: bytes | str, principal: Principal) -> None:
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (principal, time.monotonic() + self._cache_ttl)

    def forget(self, username: str) -> None:
        """Drop cached credentials of one account (password change, deletion)."""
        for key in [k for k, (p, _) in self._cache.items() if p.username == username]:
            self._cache.pop(key, None)
        self.tickets.forget(username)

    def forget_all(self) -> None:
        """Drop every cached credential (a custom role changed)."""
        self._cache.clear()

    # -- revocation ------------------------------------------------------------

    def add_revocation_listener(self, callback: RevocationListener) -> None:
        """``callback(username)`` runs whenever what that account may do shrinks: it was
        deleted, its password or role changed, or one of its keys or tokens was revoked."""
        self._listeners.append(callback)

    def remove_revocation_listener(self, callback: RevocationListener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    async def revoked(self, username: str) -> None:
        self.forget(username)
        for callback in list(self._listeners):
            try:
                result = callback(username)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # one failing listener must not stop the others
                log.error("auth.revocation_listener.failed", exc_type=type(exc).__name__)

    # -- throttling ------------------------------------------------------------

    async def _throttled(self, *scopes: str) -> None:
        for scope in scopes:
            wait = await self._limiter.retry_after(scope)
            if wait is not None:
                raise RateLimitedError(
                    "too many failed logins; try again later",
                    retry_after=wait,
                    details={"retry_after": wait},
                )

    async def _failed(self, source: str, reason: str, user: str | None = None) -> None:
        await self._limiter.failed(f"ip:{source}")
        if user is not None:
            await self._limiter.failed(f"user:{user}")
        log.warning(
            "auth.failed",
            user=user[:64] if user is not None else None,
            source=source,
            reason=reason,
        )

    def _account_permissions(self, account: Account) -> frozenset[Permission]:
        return self.roles.permissions(str(account.role))

    # -- Basic -----------------------------------------------------------------

    def _basic_key(self, username: str, password: str) -> bytes:
        msg = username.encode() + b"\x00" + password.encode()
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    async def basic(self, username: str, password: str, source: str) -> Principal:
        key = self._basic_key(username, password)
        cached = self._cached(key)
        if cached is not None:
            return cached
        await self._throttled(f"ip:{source}", f"user:{username}")
        account = await self._accounts.get(username)
        stored = account.password_hash if account else self._dummy_hash
        ok = await asyncio.to_thread(self._hasher.verify, stored, password)
        if account is None or not ok:
            reason = "unknown_user" if account is None else "bad_password"
            await self._failed(source, reason, username)
            raise AuthError("invalid credentials", code="INVALID_CREDENTIALS")
        principal = Principal(
            username=account.username,
            role=str(account.role),
            granted=self._account_permissions(account),
        )
        self._remember(key, principal)
        return principal

    # -- service keys ----------------------------------------------------------

    async def service_key(self, key: str, source: str) -> Principal:
        key_hash = hash_secret(key)
        cache_key = "k:" + key_hash
        cached = self._cached(cache_key)
        if cached is not None:
            self._touch(cached.credential_id)
            return cached
        await self._throttled(f"ip:{source}")
        found = await self._keys.by_hash(key_hash) if self._keys else None
        account = await self._accounts.get(found.owner) if found else None
        if found is None or account is None:
            await self._failed(source, "unknown_key")
            raise AuthError("invalid service key", code="INVALID_CREDENTIALS")
        expires_at = found.expires_at.timestamp() if found.expires_at else None
        if expires_at is not None and expires_at <= time.time():
            await self._failed(source, "expired_key", account.username)
            raise AuthError("this service key has expired", code="CREDENTIALS_EXPIRED")
        permissions = self._account_permissions(account)
        if found.role is not None:
            permissions &= self.roles.permissions(found.role)
        principal = Principal(
            username=account.username,
            role=str(account.role),
            granted=permissions,
            via="key",
            credential_id=found.id,
            expires_at=expires_at,
        )
        self._remember(cache_key, principal)
        self._touch(found.id)
        return principal

    def _touch(self, key_id: str | None) -> None:
        """Record ``last_used_at`` at most once a minute per key, off the request path."""
        if key_id is None or self._keys is None:
            return
        now = time.monotonic()
        if now - self._touched.get(key_id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        self._touched[key_id] = now
        task = asyncio.create_task(self._write_touch(key_id, utcnow()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_touch(self, key_id: str, when: datetime) -> None:
        try:
            assert self._keys is not None
            await self._keys.touch(key_id, when)
        except Exception as exc:  # a lost last_used_at is not worth failing for
            log.warning("auth.key_touch.failed", key_id=key_id, exc_type=type(exc).__name__)

    # -- bearer tokens ---------------------------------------------------------

    async def bearer(self, token: str, source: str) -> Principal:
        claims = self._signer.verify(token) if self._signer else None
        if claims is None:
            await self._throttled(f"ip:{source}")
            await self._failed(source, "bad_token")
            raise AuthError("invalid bearer token", code="INVALID_CREDENTIALS")
        if claims.expires_at <= time.time():
            raise AuthError("this token has expired", code="CREDENTIALS_EXPIRED")
        cache_key = "t:" + claims.token_id
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        issued = await self._tokens.get(claims.token_id) if self._tokens else None
        account = await self._accounts.get(issued.owner) if issued else None
        if issued is None or account is None or issued.revoked_at is not None:
            await self._failed(source, "revoked_token", issued.owner if issued else None)
            raise AuthError("this token was revoked", code="CREDENTIALS_REVOKED")
        permissions = self._account_permissions(account)
        if issued.scope is not None:
            permissions &= issued.scope
        principal = Principal(
            username=account.username,
            role=str(account.role),
            granted=permissions,
            via="token",
            credential_id=issued.id,
            expires_at=float(claims.expires_at),
        )
        self._remember(cache_key, principal)
        return principal

    async def issue_token(
        self, principal: Principal, ttl: float, *, role: str | None = None
    ) -> tuple[str, IssuedToken]:
        """A bearer token acting as ``principal`` (never more), revocable by its id."""
        if self._signer is None or self._tokens is None:
            raise ConflictError("tokens are not configured", code="TOKENS_UNAVAILABLE")
        scope: frozenset[Permission] | None = None
        if principal.via != "basic":
            scope = principal.permissions
        if role is not None:
            if not self.roles.exists(role):
                raise ValidationError(
                    f"no role named {role!r}",
                    code="UNKNOWN_ROLE",
                    details={"field": "role", "provided": role[:64]},
                )
            # No one hands out a role wider than it holds (a narrowed copy would work
            # the same, but a key or token that names `admin` must not be made at all).
            principal.require_all(self.roles.permissions(role), f"role {role!r}")
            scope = principal.permissions & self.roles.permissions(role)
        expires = time.time() + ttl
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        expires_at = int(expires)
        key_id = principal.credential_id if principal.via == "key" else None
        if principal.via == "token" and self._tokens is not None and principal.credential_id:
            parent = await self._tokens.get(principal.credential_id)
            key_id = parent.key_id if parent else None
        issued = IssuedToken(
            owner=principal.username,
            scope=scope,
            key_id=key_id,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
        )
        await self._tokens.insert(issued)
        return self._signer.sign(issued.id, expires_at), issued

    async def purge_expired_tokens(self) -> int:
        if self._tokens is None:
            return 0
        return await self._tokens.purge_expired(utcnow() - timedelta(days=1))

    # -- WebSocket tickets -----------------------------------------------------

    def issue_ticket(self, principal: Principal) -> str:
        return self.tickets.issue(principal)

    def redeem_ticket(self, ticket: str) -> Principal:
        principal = self.tickets.redeem(ticket)
        if principal is None:
            raise AuthError("unknown, used or expired ticket", code="INVALID_TICKET")
        return Principal(
            username=principal.username,
            role=principal.role,
            granted=principal.permissions,
            via="ticket",
            credential_id=principal.credential_id,
            expires_at=principal.expires_at,
        )

    # -- passwords and accounts ------------------------------------------------

    async def hash_password(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify_password(self, account: Account, password: str, source: str) -> bool:
        await self._throttled(f"ip:{source}", f"user:{account.username}")
        ok = await asyncio.to_thread(self._hasher.verify, account.password_hash, password)
        if not ok:
            await self._failed(source, "bad_password", account.username)
        return ok

    async def add_account(self, username: str, password: str, role: Role | str) -> Account:
        """Create an account (the accounts API builds on this)."""
        if await self._accounts.get(username) is not None:
            raise ConflictError(
                f"account {username} exists", code="ACCOUNT_EXISTS", details={"username": username}
            )
        password_hash = await self.hash_password(password)
        account = Account(username=username, role=str(role), password_hash=password_hash)
        await self._accounts.insert(account)
        return account

    async def bootstrap(self, username: str | None, password: str | None) -> None:
        """Create the first admin from APP_USER/APP_PASS (SPEC §2)."""
        if not username or not password:
            if await self._accounts.count() == 0:
                raise ValidationError(
                    "APP_USER and APP_PASS are required on first start",
                    code="MISSING_SETTING",
                    details={"field": "APP_PASS" if username else "APP_USER"},
                )
            return
        if len(password) < MIN_PASSWORD:
            raise ValidationError(
                "APP_PASS must have at least 8 characters",
                code="WEAK_PASSWORD",
                details={"field": "APP_PASS"},
            )
        account = await self._accounts.get(username)
        if account is None:
            password_hash = await self.hash_password(password)
            await self._accounts.insert(
                Account(username=username, role=Role.ADMIN.value, password_hash=password_hash)
            )
            log.info("auth.bootstrap.created", user=username)
            return
        if account.password_changed:
            return
        if not await asyncio.to_thread(self._hasher.verify, account.password_hash, password):
            account.password_hash = await self.hash_password(password)
            await self._accounts.save(account)
            self.forget(username)
            log.info("auth.bootstrap.password_updated", user=username)

    async def close(self) -> None:
        """Let pending ``last_used_at`` writes finish."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
