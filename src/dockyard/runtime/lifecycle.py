"""The Runtime: what the service runs on, with its start and stop order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from dockyard.api.deps import Services
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.automation.activity import ActivityTracker
from dockyard.domain.automation.delivery import Deliverer
from dockyard.domain.automation.timers import TimerScheduler
from dockyard.domain.containers.reconcile import StateFollower
from dockyard.domain.engines.followers import RemoteFollowers
from dockyard.domain.engines.models import LOCAL
from dockyard.domain.images.ports import ImageEngine
from dockyard.domain.leases import Duty, LeaseKeeper
from dockyard.domain.ports import Engine
from dockyard.settings import Settings
from dockyard.store import Database

log = structlog.get_logger("dockyard")

PURGE_INTERVAL = 3600.0
TIMERS_RELOAD = 5.0  # seconds; with several processes, timers set elsewhere are read

STOP_DEADLINE = 5.0  # seconds for the journals to drain when the service stops


@dataclass
class Runtime:
    """Everything the service runs on, with its start and stop order."""

    settings: Settings
    services: Services
    database: Database
    engine: Engine
    roles: RoleBook
    follower: StateFollower
    images: ImageEngine
    deliverer: Deliverer | None = None
    timers: TimerScheduler | None = None
    activity: ActivityTracker | None = None
    leases: LeaseKeeper | None = None  # several processes on one database (PostgreSQL)
    followers: RemoteFollowers | None = None  # each remote engine's (docs/engines.md)
    started: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _duty_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _remote: asyncio.Task[None] | None = None
    _stopped: bool = False

    async def start(self) -> None:
        """Bring the service up; a failure leaves nothing running (``DockyardError``
        says what, in one line). Idempotent."""
        if self.started:
            return
        settings, services = self.settings, self.services
        try:
            app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
            # Processes that start together on one PostgreSQL: one migrates and makes the
            # first account at a time (the next finds it done).
            async with self.database.exclusive("start-up", wait=120):
                await self.database.migrate()
                await services.auth.bootstrap(settings.app_user, app_pass)
            await self.roles.load()
            await services.auth.purge_expired_tokens()
            await self.engine.ensure_network(settings.network_name)
            if settings.build_network != "none":  # never the default bridge
                await self.images.ensure_build_network(settings.build_network)
            await services.events.start()
            services.audit.start()
            await services.webhooks.start()
            await services.idempotency.purge()
            if self.activity is not None:
                self.activity.start()
            await services.engines.load()  # the host-access switches, before any document
            if self.leases is None:  # one process: its duties simply run
                await services.builds.recover()
                await self._follow_local()
                await self._follow_remote()
                await self._deliver()
            else:  # several may share the database: each duty where its lease is
                self.leases.more = self.engine_duties  # one per remote engine, as they come
                await self.leases.start()
                await services.builds.recover(running=await self.leases.live_instances())
            await services.engines.start()  # the local engine's record; the watcher
        except BaseException:
            await self.stop(0.5)
            raise
        self._spawn(services.metrics.run_forever(), "metrics")
        self._spawn(self._purge_forever(), "purge")
        self.started = True
        log.info("dockyard.started", compose_version=services.compose_version)

    # -- the duties that run in one process at a time (domain/leases.py) -------------

    def duties(self) -> list[Duty]:
        """What a lease guards when several processes share the database."""
        return [
            Duty(f"engine:{LOCAL}", self._follow_local, self._unfollow_local),
            Duty("deliveries", self._deliver, self._undeliver),
        ]

    async def engine_duties(self) -> list[Duty]:
        """One duty per remote engine of the registry, ``engine:<id>``: its follower and
        reconcile, so that processes on one database split the engines between them."""
        followers = self.followers
        if followers is None:
            return []
        return [
            Duty(f"engine:{one}", partial(followers.follow, one), partial(followers.unfollow, one))
            for one in await followers.engine_ids()
        ]

    def duties_held(self) -> list[str]:
        """The duties this process runs now (``/healthz``)."""
        if self.leases is not None:
            return self.leases.held()
        if not self.started:
            return []
        remote = self.followers.following if self.followers is not None else []
        return [duty.lease for duty in self.duties()] + [f"engine:{one}" for one in remote]

    async def _follow_local(self) -> None:
        """The local engine: the reconcile (once now, then on an interval), its events
        followed, and the timers (after the reconcile: statuses are current)."""
        services = self.services
        await services.reconciler.run_once(startup=True)
        if self.timers is not None:
            await self.timers.start()
            if self.leases is not None:  # other processes change timers: look again
                self._spawn(self._reload_timers(self.timers), "timers-reload", duty=True)
        interval = self.settings.reconcile_interval
        self._spawn(services.reconciler.run_forever(interval), "reconcile", duty=True)
        self._spawn(self.follower.run_forever(), "follow-engine", duty=True)

    async def _unfollow_local(self) -> None:
        if self.timers is not None:
            await self.timers.stop()
        tasks, self._duty_tasks = self._duty_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        self.services.containers.events_live = False

    async def _follow_remote(self) -> None:
        if self.followers is not None and self._remote is None:
            work = self.followers.run_forever()
            self._remote = asyncio.create_task(work, name="follow-remote-engines")

    async def _unfollow_remote(self) -> None:
        task, self._remote = self._remote, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if self.followers is not None:  # those started by their leases' duties
            await self.followers.stop()

    async def _reload_timers(self, timers: TimerScheduler) -> None:
        while True:
            await asyncio.sleep(TIMERS_RELOAD)
            try:
                await timers.load()
            except Exception as exc:  # the store is down: next time
                log.warning("timers.reload_failed", exc_type=type(exc).__name__)

    async def _deliver(self) -> None:
        if self.deliverer is not None:
            self.deliverer.start()

    async def _undeliver(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.stop(STOP_DEADLINE / 2, final=False)

    async def _purge_forever(self) -> None:
        """Expired idempotency keys go (they are refused as expired before that too)."""
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                await self.services.idempotency.purge()
            except Exception as exc:  # the store is down: next time
                log.warning("purge.failed", exc_type=type(exc).__name__)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str, *, duty: bool = False) -> None:
        task = asyncio.create_task(work, name=name)
        (self._duty_tasks if duty else self._tasks).append(task)

    async def stop(self, deadline: float = STOP_DEADLINE) -> None:
        """Drain, then cancel, then close; logs what could not be written. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        services = self.services
        if self.timers is not None:  # first: no idle stop or expiry starts from here on
            await self.timers.stop()
        await services.terminals.shutdown()
        await services.engines.stop()  # the watcher's polls end, their clients close
        if self.leases is not None:  # the duties end; other processes take them at once
            await self.leases.stop()
        await self._unfollow_remote()
        for task in self._tasks + self._duty_tasks:  # the producers first: nothing new
            task.cancel()  # is queued after this
        for task in self._tasks + self._duty_tasks:
            with suppress(asyncio.CancelledError):
                await task
        # Running builds and pulls end `failed: interrupted` (their events drain below).
        await services.jobs.stop(max(0.1, deadline / 2))
        if self.deliverer is not None:  # attempts in flight end; the rest stay queued
            await self.deliverer.stop(max(0.1, (deadline - (time.monotonic() - started)) / 2))
        left = max(0.1, deadline - (time.monotonic() - started))
        lost_events, lost_audit = await asyncio.gather(
            services.events.stop(left), services.audit.stop(left)
        )
        # After the events: the deliveries of the last events are queued by then.
        lost_deliveries = await services.webhooks.stop(
            max(0.1, deadline - (time.monotonic() - started))
        )
        if self.activity is not None:  # the last marks, before the database closes
            await self.activity.stop()
        await services.auth.close()
        await self.engine.close()
        await self.database.close()
        log.info(
            "dockyard.stopped",
            seconds=round(time.monotonic() - started, 3),
            events_dropped=lost_events,
            audit_dropped=lost_audit,
            deliveries_dropped=lost_deliveries,
        )
