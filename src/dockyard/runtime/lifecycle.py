"""The Runtime: what the service runs on, with its start and stop order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from dockyard.api.deps import Services
from dockyard.domain.access.roles import RoleBook
from dockyard.domain.automation.activity import ActivityTracker
from dockyard.domain.automation.delivery import Deliverer
from dockyard.domain.automation.timers import TimerScheduler
from dockyard.domain.containers.reconcile import StateFollower
from dockyard.domain.engines.followers import RemoteFollowers
from dockyard.domain.images.ports import ImageEngine
from dockyard.domain.ports import Engine
from dockyard.settings import Settings
from dockyard.store import Database

log = structlog.get_logger("dockyard")

PURGE_INTERVAL = 3600.0

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
    followers: RemoteFollowers | None = None  # each remote engine's (docs/engines.md)
    started: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopped: bool = False

    async def start(self) -> None:
        """Bring the service up; a failure leaves nothing running (``DockyardError``
        says what, in one line). Idempotent."""
        if self.started:
            return
        settings, services = self.settings, self.services
        try:
            await self.database.migrate()
            app_pass = settings.app_pass.get_secret_value() if settings.app_pass else None
            await services.auth.bootstrap(settings.app_user, app_pass)
            await self.roles.load()
            await services.auth.purge_expired_tokens()
            await self.engine.ensure_network(settings.network_name)
            if settings.build_network != "none":  # never the default bridge
                await self.images.ensure_build_network(settings.build_network)
            await services.builds.recover()
            await services.events.start()
            services.audit.start()
            await services.webhooks.start()
            await services.reconciler.run_once(startup=True)
            await services.idempotency.purge()
            if self.activity is not None:
                self.activity.start()
            if self.timers is not None:  # after the reconcile: statuses are current
                await self.timers.start()
            await services.engines.start()  # the local engine's record; the watcher
        except BaseException:
            await self.stop(0.5)
            raise
        self._spawn(services.reconciler.run_forever(settings.reconcile_interval), "reconcile")
        self._spawn(self.follower.run_forever(), "follow-engine")
        if self.followers is not None:
            self._spawn(self.followers.run_forever(), "follow-remote-engines")
        self._spawn(services.metrics.run_forever(), "metrics")
        self._spawn(self._purge_forever(), "purge")
        if self.deliverer is not None:
            self.deliverer.start()
        self.started = True
        log.info("dockyard.started", compose_version=services.compose_version)

    async def _purge_forever(self) -> None:
        """Expired idempotency keys go (they are refused as expired before that too)."""
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                await self.services.idempotency.purge()
            except Exception as exc:  # the store is down: next time
                log.warning("purge.failed", exc_type=type(exc).__name__)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

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
        for task in self._tasks:  # the producers first: nothing new is queued after this
            task.cancel()
        for task in self._tasks:
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
