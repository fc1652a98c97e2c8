"""Opening terminal sessions (SPEC §5): who may, on what, and how they end."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from contextlib import suppress

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.scaling import require_replica
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.models import Status
from dockyard.domain.ports import Engine
from dockyard.domain.terminal.framing import (
    REPLAY_BYTES,
    AttachHub,
    Output,
    Session,
    SessionRegistry,
    Subscriber,
    TerminalStream,
)
from dockyard.errors import StateError, ValidationError


class Connection:
    """One client's view of a terminal: an exec stream of its own, or a seat at the
    container's attach hub."""

    def __init__(
        self,
        session: Session,
        *,
        stream: TerminalStream | None = None,
        hub: AttachHub | None = None,
        seat: Subscriber | None = None,
        on_input: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self._on_input = on_input  # terminal input is activity (the idle timer)
        self._stream = stream
        self._hub = hub
        self._seat = seat

    @property
    def is_exec(self) -> bool:
        return self._stream is not None

    def _target(self) -> TerminalStream:
        if self._stream is not None:
            return self._stream
        assert self._hub is not None
        return self._hub.stream

    async def read(self) -> Output | None:
        if self._stream is not None:
            return await self._stream.read()
        assert self._seat is not None
        return await self._seat.queue.get()

    async def write(self, data: bytes) -> None:
        if self._on_input is not None:
            self._on_input()
        await self._target().write(data)

    async def close_stdin(self) -> None:
        """End of input (the binary protocol's empty stdin frame): an exec process reads
        EOF. Attached to the main process, it is ignored: its stdin is every attached
        client's, and it stays open while the container runs."""
        if self._stream is not None:
            await self._stream.close_stdin()

    async def resize(self, cols: int, rows: int) -> None:
        await self._target().resize(cols, rows)

    async def signal(self, name: str) -> None:
        await self._target().signal(name)

    async def end_by_client(self) -> None:
        """``close`` from the client: an exec process is killed; PID 1 keeps running."""
        if self._stream is not None:
            await self._stream.terminate()

    async def exit_code(self) -> int | None:
        return await self._target().exit_code()

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.terminate()
            await self._stream.close()
        elif self._hub is not None and self._seat is not None:
            await self._hub.leave(self._seat)


class TerminalService:
    def __init__(
        self, containers: ContainerService, engine: Engine, registry: SessionRegistry, user: str
    ) -> None:
        self._containers = containers
        self._engine = engine
        self.registry = registry
        self._user = user
        self._hubs: dict[str, AttachHub] = {}

    async def open(
        self,
        principal: Principal,
        cuid: str,
        *,
        cmd: str | None,
        tty: bool,
        cols: int,
        rows: int,
        replica: int = 1,
    ) -> Connection:
        """A session in ``replica`` of the container (1: the container itself)."""
        principal.require(Permission.CONTAINERS_EXEC)
        record = await self._containers.owned(principal, cuid)
        require_replica(record, replica)
        await self._containers.refresh(record)
        status = record.status
        if replica > 1 and status is Status.RUNNING:
            status = (await self._containers.replica_states(record))[replica - 1].status
        if status is not Status.RUNNING:
            raise StateError(
                f"container is {status.value}, not running",
                code="NOT_RUNNING",
                details={"status": status.value, "replica": replica},
            )
        argv = _argv(cmd)
        session = self.registry.open(principal.username, cuid)
        activity = self._containers.activity
        activity.touch(cuid)  # a session opened (exec or attach) is activity

        def on_input() -> None:
            activity.touch(cuid)

        try:
            if argv is not None:
                stream = await self._engine.open_exec(
                    cuid, argv, tty=tty, cols=cols, rows=rows, user=self._user, replica=replica
                )
                return Connection(session, stream=stream, on_input=on_input)
            key = cuid if replica == 1 else f"{cuid}/{replica}"  # one hub per replica
            hub = self._hubs.get(key)
            if hub is None or hub.ended:
                hub = AttachHub(
                    key,
                    lambda: self._engine.open_attach(cuid, replica=replica),
                    lambda: self._engine.recent_output(cuid, REPLAY_BYTES, replica=replica),
                    self._forget_hub,
                )
                self._hubs[key] = hub
            seat = await hub.join()
            with suppress(Exception):
                await hub.stream.resize(cols, rows)
            return Connection(session, hub=hub, seat=seat, on_input=on_input)
        except BaseException:
            self.registry.close(session)
            raise

    def _forget_hub(self, key: str) -> None:
        self._hubs.pop(key, None)

    def release(self, connection: Connection) -> None:
        self.registry.close(connection.session)

    async def shutdown(self, grace: float = 2.0) -> None:
        """End every session with an error frame before the server goes away."""
        self.registry.end_all("shutting_down", "the service is shutting down")
        for _ in range(int(grace / 0.05)):
            if not len(self.registry):
                return
            await asyncio.sleep(0.05)  # sessions are sending their last frame


def _argv(cmd: str | None) -> list[str] | None:
    if cmd is None:
        return None
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise ValidationError(
            f"cmd: {exc}", code="INVALID_COMMAND", details={"field": "cmd"}
        ) from None
    if not argv:
        raise ValidationError("cmd is empty", code="INVALID_COMMAND", details={"field": "cmd"})
    return argv
