"""Credential checks: cache, throttling, bootstrap (real argon2 where it matters)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.adapters.security import Argon2Hasher, MemoryLoginLimiter
from dockyard.domain.access.authn import Authenticator
from dockyard.domain.models import Role
from dockyard.errors import AuthError, RateLimitedError, ValidationError
from dockyard.store import Database, SqlAccountRepository


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[SqlAccountRepository]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        await db.migrate()
        yield SqlAccountRepository(db)
    finally:
        await db.close()


async def test_bootstrap_then_basic_with_cache(accounts: SqlAccountRepository) -> None:
    auth = Authenticator(accounts, Argon2Hasher(), MemoryLoginLimiter(5), cache_ttl=60)
    await auth.bootstrap("admin", "first-password")
    stored = await accounts.get("admin")
    assert stored is not None and stored.role == Role.ADMIN
    assert "first-password" not in stored.password_hash
    principal = await auth.basic("admin", "first-password", "1.2.3.4")
    assert principal.username == "admin" and principal.is_admin
    # Cached: the second check skips argon2 entirely.
    started = time.perf_counter()
    for _ in range(100):
        await auth.basic("admin", "first-password", "1.2.3.4")
    assert (time.perf_counter() - started) / 100 < 0.005
    with pytest.raises(AuthError):
        await auth.basic("admin", "First-password", "1.2.3.4")


async def test_env_password_wins_until_changed(accounts: SqlAccountRepository) -> None:
    auth = Authenticator(accounts, Argon2Hasher(), MemoryLoginLimiter(50), cache_ttl=60)
    await auth.bootstrap("admin", "first-password")
    await auth.bootstrap("admin", "second-password")
    await auth.basic("admin", "second-password", "h")
    with pytest.raises(AuthError):
        await auth.basic("admin", "first-password", "h")
    account = await accounts.get("admin")
    assert account is not None
    account.password_changed = True
    await accounts.save(account)
    await auth.bootstrap("admin", "third-password")
    with pytest.raises(AuthError):
        await auth.basic("admin", "third-password", "h")


async def test_first_start_needs_credentials(accounts: SqlAccountRepository) -> None:
    auth = Authenticator(accounts, Argon2Hasher(), MemoryLoginLimiter(5), cache_ttl=60)
    with pytest.raises(ValidationError) as err:
        await auth.bootstrap(None, None)
    assert err.value.details["field"] == "APP_USER"
    with pytest.raises(ValidationError):
        await auth.bootstrap("admin", "short")


async def test_failed_logins_are_throttled_per_source_and_account(
    accounts: SqlAccountRepository,
) -> None:
    auth = Authenticator(accounts, Argon2Hasher(), MemoryLoginLimiter(3), cache_ttl=60)
    await auth.bootstrap("admin", "right-password")
    for _ in range(3):
        with pytest.raises(AuthError):
            await auth.basic("ghost", "x", "10.0.0.1")
    with pytest.raises(RateLimitedError) as err:
        await auth.basic("admin", "right-password", "10.0.0.1")
    assert err.value.retry_after >= 1
    # Another source is not blocked by the first one's failures.
    assert (await auth.basic("admin", "right-password", "10.0.0.2")).username == "admin"
