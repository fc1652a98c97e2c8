"""Each remote engine's reconcile and event follower (issue 12).

The local engine's are the Runtime's, as they always were. For every ``remote`` engine
of the registry, ``RemoteFollowers`` runs a ``StateFollower`` on that engine's event
stream (statuses, the events history, metrics and timers hear its containers' events)
and a ``Reconciler`` of that engine's records: on each (re)connect of the stream, so an
engine that comes back is caught up without a restart of Dockyard, and every reconcile
interval. Engines added or removed are picked up within ``interval`` (one process), or
as each engine's duty ``engine:<id>`` comes and goes with its lease (several processes
on one PostgreSQL: runtime/lifecycle.py, domain/leases.py). The engine's
clients come from the routes (``EngineFeed``), so they are the ones the containers'
calls use, rebuilt when the engine changes, refused at once while it is unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress

import structlog

from dockyard.domain.containers.reconcile import Reconciler, StateFollower
from dockyard.domain.engines.routing import EngineRoutes
from dockyard.domain.ports import EngineEvent, ManagedContainer
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.engines")


class EngineFeed:
    """One engine's managed list and event stream, through the routes."""

    def __init__(self, routes: EngineRoutes, engine_id: str) -> None:
        self._routes = routes
        self.engine_id = engine_id

    async def list_managed(self) -> list[ManagedContainer]:
        return await (await self._routes.parts_of(self.engine_id)).engine.list_managed()

    async def stream_events(self) -> AsyncIterator[EngineEvent]:
        parts = await self._routes.parts_of(self.engine_id)
        async for event in parts.engine.stream_events():
            yield event


Build = Callable[[EngineFeed], tuple[Reconciler, StateFollower]]


class RemoteFollowers:
    """A reconcile and a follower per remote engine, started and stopped as the registry
    changes (``engine_ids``: the remote engines' ids)."""

    def __init__(
        self,
        routes: EngineRoutes,
        engine_ids: Callable[[], Awaitable[Sequence[str]]],
        build: Build,
        *,
        interval: float,
        reconcile_interval: float,
    ) -> None:
        self._routes = routes
        self._engine_ids = engine_ids
        self._build = build
        self.interval = interval
        self._reconcile_interval = reconcile_interval
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def following(self) -> list[str]:
        return sorted(self._tasks)

    async def run_forever(self) -> None:
        try:
            while True:
                await self.sync()
                await asyncio.sleep(self.interval)
        finally:
            await self._cancel(list(self._tasks))

    async def engine_ids(self) -> Sequence[str]:
        """The registry's remote engines now."""
        return await self._engine_ids()

    async def sync(self) -> None:
        """Follow the registry's remote engines now (and no others): one process."""
        try:
            wanted = set(await self._engine_ids())
        except DockyardError as exc:  # the store is busy: as before, until next time
            log.warning("engines.followers_sync_failed", error=exc.code)
            return
        for engine_id in sorted(wanted - set(self._tasks)):
            await self.follow(engine_id)
        await self._cancel(sorted(set(self._tasks) - wanted))

    async def follow(self, engine_id: str) -> None:
        """Start following one engine (its lease's duty, with several processes)."""
        if engine_id not in self._tasks:
            self._tasks[engine_id] = asyncio.create_task(
                self._follow(engine_id), name=f"follow-engine-{engine_id}"
            )

    async def unfollow(self, engine_id: str) -> None:
        if engine_id in self._tasks:
            await self._cancel([engine_id])

    async def stop(self) -> None:
        await self._cancel(list(self._tasks))

    async def _cancel(self, engine_ids: list[str]) -> None:
        for engine_id in engine_ids:
            task = self._tasks.pop(engine_id)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _follow(self, engine_id: str) -> None:
        reconciler, follower = self._build(EngineFeed(self._routes, engine_id))
        log.info("engines.following", engine=engine_id)
        await asyncio.gather(
            follower.run_forever(), reconciler.run_forever(self._reconcile_interval)
        )
