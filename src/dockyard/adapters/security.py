"""Password hashing (argon2-cffi) and login throttling (limits)."""

from __future__ import annotations

import math
import time

import argon2
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class Argon2Hasher:
    def __init__(self) -> None:
        self._hasher = argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class MemoryLoginLimiter:
    """At most N failures per key in any moving minute."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def failed(self, key: str) -> None:
        await self._limiter.hit(self._item, key)

    async def retry_after(self, key: str) -> int | None:
        if await self._limiter.test(self._item, key):
            return None
        stats = await self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
