"""Duties that run in one Dockyard process at a time (issue 12, docs/engines.md).

Several Dockyard processes may share one PostgreSQL. Most of what they do is answering
requests, which any of them can; a few duties must run once: following an engine's
events and reconciling its containers (else each event is recorded twice), the timers
(else an idle container is stopped twice), the webhook deliveries (else sent twice).
Each duty has a lease in the database; the ``LeaseKeeper`` of each process tries to take
the leases of its duties, starts a duty when it gets its lease and stops it when it
loses it (or cannot renew it in time: then another process may take it).

Every process also holds ``instance:<its id>`` for as long as it runs: a job or anything
else marked with an instance whose lease has expired was left by a process that ended.
On SQLite (one process) there is no keeper: the duties simply run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("dockyard.leases")

INSTANCE = "instance:"


class Exclusive(Protocol):
    """``async with exclusive(name):`` one holder of ``name`` at a time in every process
    on the database (``Database.exclusive``); within a process, callers take their own
    asyncio lock first, so one task at a time waits here."""

    def __call__(self, name: str) -> AbstractAsyncContextManager[None]: ...


@asynccontextmanager
async def alone(name: str) -> AsyncIterator[None]:
    """The ``Exclusive`` of one process (tests, fakes): nothing to share."""
    yield


class LeaseRepository(Protocol):
    async def hold(self, name: str, holder: str, ttl: float) -> bool: ...
    async def release(self, name: str, holder: str) -> None: ...
    async def live(self, prefix: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class Duty:
    """Work that runs while its lease is held: ``start`` begins it (returns once it is
    under way), ``stop`` ends it."""

    lease: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class LeaseKeeper:
    """Takes, renews and lets go of the leases of this process's duties."""

    def __init__(
        self,
        repo: LeaseRepository,
        holder: str,
        duties: list[Duty],
        *,
        ttl: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self.holder = holder
        self._ttl = ttl
        self._clock = clock
        self._duties = [Duty(INSTANCE + holder, _nothing, _nothing), *duties]
        self._renewed: dict[str, float] = {}  # lease -> when it was last taken or renewed
        self._running: dict[str, Duty] = {}  # lease -> its duty, started here
        self._task: asyncio.Task[None] | None = None
        # Duties that come and go (one per remote engine of the registry), asked for at
        # each round; a duty no longer listed is stopped and its lease let go.
        self.more: Callable[[], Awaitable[Sequence[Duty]]] | None = None
        self._more: Sequence[Duty] = ()

    def holds(self, lease: str) -> bool:
        return lease in self._renewed

    def held(self) -> list[str]:
        """The leases of the duties this process runs now (not its instance's)."""
        return [lease for lease in self._renewed if not lease.startswith(INSTANCE)]

    async def live_instances(self) -> set[str]:
        """The ids of the Dockyard processes that run now (this one included)."""
        found = await self._repo.live(INSTANCE)
        return {name[len(INSTANCE) :] for name in found} | {self.holder}

    async def start(self) -> None:
        """Take what can be taken now and start those duties; then keep at it."""
        await self.tick()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="leases")

    async def _current(self) -> list[Duty]:
        if self.more is not None:
            try:
                self._more = list(await self.more())
            except Exception as exc:  # the registry cannot be read: as last time
                log.warning("lease.duties_unknown", exc_type=type(exc).__name__)
        return [*self._duties, *self._more]

    async def _let_go(self, lease: str) -> None:
        del self._renewed[lease]
        duty = self._running.pop(lease, None)
        if duty is not None:
            await duty.stop()
        with suppress(Exception):  # the store is down: the lease simply expires
            await self._repo.release(lease, self.holder)

    async def tick(self) -> None:
        """One round: renew or take each lease; start or stop duties to match."""
        duties = await self._current()
        wanted = {duty.lease for duty in duties}
        for lease in [lease for lease in self._renewed if lease not in wanted]:
            log.info("lease.dropped", lease=lease, holder=self.holder)  # its duty is gone
            await self._let_go(lease)
        for duty in duties:
            try:
                held = await self._repo.hold(duty.lease, self.holder, self._ttl)
            except Exception as exc:  # the store is down: held only while surely valid
                log.warning("lease.renew_failed", lease=duty.lease, exc_type=type(exc).__name__)
                taken = self._renewed.get(duty.lease)
                held = taken is not None and self._clock() - taken < self._ttl * 2 / 3
                if held:
                    continue
            if held:
                gained = duty.lease not in self._renewed
                self._renewed[duty.lease] = self._clock()
                if gained:
                    log.info("lease.taken", lease=duty.lease, holder=self.holder)
                    self._running[duty.lease] = duty
                    await duty.start()
            elif duty.lease in self._renewed:
                del self._renewed[duty.lease]
                log.warning("lease.lost", lease=duty.lease, holder=self.holder)
                await self._running.pop(duty.lease, duty).stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await self.tick()
            except Exception as exc:  # a duty that failed to start or stop: next round
                log.error("lease.tick_failed", exc_type=type(exc).__name__)

    async def stop(self) -> None:
        """Stop the duties this process runs and let their leases go at once (another
        process takes them at its next round, not after the time to live)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for lease in reversed(list(self._renewed)):
            await self._let_go(lease)
