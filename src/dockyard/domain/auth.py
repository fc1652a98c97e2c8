"""Checking credentials (SPEC §3): Basic auth against accounts, with a short cache.

argon2 is deliberately slow (tens of ms); a verified credential is cached for a
short while, keyed by an HMAC under a per-process random key, so that a repeated
request costs microseconds and the cache never holds a password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Protocol

import structlog

from dockyard.domain.access import Principal
from dockyard.domain.models import Account, Role
from dockyard.domain.protocols import AccountRepository
from dockyard.errors import AuthError, ConflictError, RateLimitedError, ValidationError

log = structlog.get_logger("dockyard.auth")

_CACHE_MAX = 10_000


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, password_hash: str, password: str) -> bool: ...


class LoginLimiter(Protocol):
    """Counts failed logins per key (source address, account)."""

    async def failed(self, key: str) -> None: ...
    async def retry_after(self, key: str) -> int | None: ...


class Authenticator:
    def __init__(
        self,
        accounts: AccountRepository,
        hasher: PasswordHasher,
        limiter: LoginLimiter,
        cache_ttl: float,
    ) -> None:
        self._accounts = accounts
        self._hasher = hasher
        self._limiter = limiter
        self._cache_ttl = cache_ttl
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._key = secrets.token_bytes(32)
        # Unknown users are checked against this, so both failures take as long.
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    def _cache_key(self, username: str, password: str) -> bytes:
        msg = username.encode() + b"\x00" + password.encode()
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    async def basic(self, username: str, password: str, source: str) -> Principal:
        key = self._cache_key(username, password)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        for scope in (f"ip:{source}", f"user:{username}"):
            wait = await self._limiter.retry_after(scope)
            if wait is not None:
                raise RateLimitedError(
                    "too many failed logins; try again later",
                    retry_after=wait,
                    details={"retry_after": wait},
                )
        account = await self._accounts.get(username)
        stored = account.password_hash if account else self._dummy_hash
        ok = await asyncio.to_thread(self._hasher.verify, stored, password)
        if account is None or not ok:
            await self._limiter.failed(f"ip:{source}")
            await self._limiter.failed(f"user:{username}")
            log.warning(
                "auth.failed",
                user=username[:64],
                source=source,
                reason="unknown_user" if account is None else "bad_password",
            )
            raise AuthError("invalid credentials", code="INVALID_CREDENTIALS")
        principal = Principal(username=account.username, role=account.role)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (principal, now + self._cache_ttl)
        return principal

    def forget(self, username: str) -> None:
        """Drop cached credentials of one account (password change, deletion)."""
        for key in [k for k, (p, _) in self._cache.items() if p.username == username]:
            self._cache.pop(key, None)

    async def add_account(self, username: str, password: str, role: Role) -> Account:
        """Create an account (the accounts API builds on this)."""
        if await self._accounts.get(username) is not None:
            raise ConflictError(
                f"account {username} exists", code="ACCOUNT_EXISTS", details={"username": username}
            )
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        account = Account(username=username, role=role, password_hash=password_hash)
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
        if len(password) < 8:
            raise ValidationError(
                "APP_PASS must have at least 8 characters",
                code="WEAK_PASSWORD",
                details={"field": "APP_PASS"},
            )
        account = await self._accounts.get(username)
        if account is None:
            password_hash = await asyncio.to_thread(self._hasher.hash, password)
            await self._accounts.insert(
                Account(username=username, role=Role.ADMIN, password_hash=password_hash)
            )
            log.info("auth.bootstrap.created", user=username)
            return
        if account.password_changed:
            return
        if not await asyncio.to_thread(self._hasher.verify, account.password_hash, password):
            account.password_hash = await asyncio.to_thread(self._hasher.hash, password)
            await self._accounts.save(account)
            self.forget(username)
            log.info("auth.bootstrap.password_updated", user=username)
