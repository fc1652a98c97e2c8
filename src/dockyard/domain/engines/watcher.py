"""The engine watcher: one task per engine, polling ``/version`` and ``/info``.

Each engine gets its own client (``ProbeFactory`` builds it from the engine's address and
TLS files), and every poll has a deadline. A poll that fails marks the engine unreachable,
one that answers marks it healthy; a change either way is recorded (``engine.unreachable``
/ ``engine.healthy``). The local engine's event follower and reconcile are not this:
they stay as they are (issue 12 moves them per engine later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

import structlog

from dockyard.domain.engines.models import EngineFacts, EngineHealth, EngineRecord, TlsFiles
from dockyard.domain.models import utcnow
from dockyard.domain.recording import SYSTEM, Change, NullRecorder, Recorder
from dockyard.errors import DockyardError

log = structlog.get_logger("dockyard.engines")


class EngineProbe(Protocol):
    """One engine's client, as the watcher uses it."""

    async def probe(self) -> EngineFacts:
        """``/version`` and ``/info`` of the engine (raises ``DockyardError`` if it fails)."""
        ...

    async def close(self) -> None: ...


ProbeFactory = Callable[[EngineRecord, TlsFiles | None], EngineProbe]


class EngineWatcher:
    """Polls every watched engine on ``interval``; ``health(id)`` is the latest word."""

    def __init__(
        self,
        probes: ProbeFactory,
        *,
        interval: float,
        timeout: float,
        recorder: Recorder | None = None,
    ) -> None:
        self._probes = probes
        self.interval = interval
        self.timeout = timeout
        self._recorder = recorder or NullRecorder()
        self._health: dict[str, EngineHealth] = {}
        self._clients: dict[str, EngineProbe] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    def health(self, engine_id: str) -> EngineHealth:
        return self._health.get(engine_id, EngineHealth())

    def start(self) -> None:
        """Polls begin for the engines watched so far, and for those watched later."""
        self._running = True
        for engine_id in self._clients:
            self._spawn(engine_id)

    async def watch(self, record: EngineRecord, tls: TlsFiles | None) -> None:
        """Watch ``record`` (again, with a fresh client, if it was watched)."""
        await self.unwatch(record.id, forget=False)
        self._clients[record.id] = self._probes(record, tls)
        if self._running:
            self._spawn(record.id)

    async def unwatch(self, engine_id: str, *, forget: bool = True) -> None:
        task = self._tasks.pop(engine_id, None)
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        client = self._clients.pop(engine_id, None)
        if client is not None:
            await client.close()
        if forget:
            self._health.pop(engine_id, None)

    async def poll(self, engine_id: str) -> EngineHealth:
        """One poll now (the API's add waits for it, so its answer says how it went)."""
        client = self._clients.get(engine_id)
        if client is None:
            return self.health(engine_id)
        try:
            async with asyncio.timeout(self.timeout):
                facts = await client.probe()
        except (DockyardError, TimeoutError) as exc:
            error = exc.message if isinstance(exc, DockyardError) else "no answer in time"
            self._mark(engine_id, None, error)
        except Exception as exc:  # a transport's own failure (ssh): unreachable all the same
            log.warning("engine.probe_error", engine=engine_id, exc_type=type(exc).__name__)
            self._mark(engine_id, None, f"the engine's client failed ({type(exc).__name__})")
        else:
            self._mark(engine_id, facts, None)
        return self.health(engine_id)

    async def stop(self) -> None:
        self._running = False
        for engine_id in list(self._clients):
            await self.unwatch(engine_id, forget=False)

    def _spawn(self, engine_id: str) -> None:
        if engine_id not in self._tasks:
            self._tasks[engine_id] = asyncio.create_task(
                self._run(engine_id), name=f"watch-engine-{engine_id}"
            )

    async def _run(self, engine_id: str) -> None:
        while True:
            try:
                await self.poll(engine_id)
            except Exception as exc:  # a bug in a probe must not end the watch
                log.exception("engine.poll_failed", engine=engine_id, exc_type=type(exc).__name__)
            await asyncio.sleep(self.interval)

    def _mark(self, engine_id: str, facts: EngineFacts | None, error: str | None) -> None:
        before = self._health.get(engine_id, EngineHealth())
        now = utcnow()
        if facts is not None:
            after = EngineHealth(True, facts, now, None, now)
        else:
            after = EngineHealth(False, before.facts, before.last_seen, error, now)
        self._health[engine_id] = after
        # A change is news; so is an engine unreachable from its first poll on (a first
        # healthy answer is not: every start would say so of every engine).
        if before.reachable is after.reachable or (before.reachable is None and facts):
            return
        action = "engine.healthy" if after.reachable else "engine.unreachable"
        details: dict[str, object] = {"engine": engine_id}
        if error is not None:
            details["error"] = error[:300]
        log.info(action, engine=engine_id, error=error)
        self._recorder.record(
            Change(
                action=action,
                resource=engine_id,
                owner=None,  # admins' events
                actor=SYSTEM,
                component="engines",
                details=details,
            )
        )
