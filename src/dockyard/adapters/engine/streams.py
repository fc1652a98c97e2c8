"""Interactive streams through the Engine API: exec sessions and attaching to PID 1.

Both are hijacked HTTP connections (aiodocker's ``Stream``); its queue is flow
controlled, so a client that reads slowly slows the process down instead of growing
memory here.
"""

from __future__ import annotations

import asyncio
import os
import signal as signals
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import aiodocker
from aiodocker.containers import DockerContainer
from aiodocker.execs import Exec
from aiodocker.stream import Stream

from dockyard.adapters.engine.errors import map_engine_errors
from dockyard.adapters.engine.transport import EngineTransport, stream_of
from dockyard.domain.terminal.framing import Output
from dockyard.errors import DockyardError, EngineError, NotFoundError

_SIGNALS = {
    "INT": signals.SIGINT,
    "TERM": signals.SIGTERM,
    "KILL": signals.SIGKILL,
    "HUP": signals.SIGHUP,
    "QUIT": signals.SIGQUIT,
    "USR1": signals.SIGUSR1,
    "USR2": signals.SIGUSR2,
}


SHELL = "/bin/sh"
# The TTY of an exec gets its size from the resize call after it starts (engines before
# API 1.42 take no size at create), so a process that reads its size at once saw 0x0.
# Where the container has a shell, the size is set before the command runs instead.
_SIZED = 'stty rows "$1" cols "$2" 2>/dev/null; shift 2; exec "$@"'


def sized(cmd: list[str], cols: int, rows: int) -> list[str]:
    """``cmd`` run with its TTY already ``cols`` x ``rows`` (the shell is replaced by it)."""
    return [SHELL, "-c", _SIZED, "sh", str(rows), str(cols), *cmd]


def _gone(what: str) -> Callable[[], DockyardError]:
    return lambda: NotFoundError(f"{what} is gone from the engine", code="CONTAINER_MISSING")


class _StreamSession:
    """Reads and writes of the hijacked connection; a failure is ``the engine's <name>
    stream broke``. The stream was entered through ``stack`` (aiodocker's public
    ``async with``), which closes it."""

    def __init__(self, stream: Stream, stack: AsyncExitStack, timeout: float, name: str) -> None:
        self._stream = stream
        self._stack = stack
        self._timeout = timeout
        self._name = name

    def _mapped(self, what: str) -> AbstractContextManager[None]:
        return map_engine_errors(what, stream=self._name)

    async def read(self) -> Output | None:
        with self._mapped(f"the {self._name} stream"):
            message = await self._stream.read_out()
        if message is None:
            return None
        return Output("stderr" if message.stream == 2 else "stdout", message.data)

    async def write(self, data: bytes) -> None:
        with self._mapped(f"the {self._name} stream"):
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        """End of input: the hijacked connection is half-closed (what ``docker exec -i``
        does at EOF); the engine closes the process's stdin, and output still flows.
        aiodocker has no public half-close: its response holds the connection."""
        response = self._stream._resp
        connection = response.connection if response is not None else None
        transport = connection.transport if connection is not None else None
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            with self._mapped(f"the {self._name} stream"):
                transport.write_eof()

    async def close(self) -> None:
        with suppress(Exception):
            await self._stack.aclose()


class ExecSession(_StreamSession):
    """A new process in the container (``cmd=``)."""

    def __init__(
        self, stream: Stream, stack: AsyncExitStack, exec_obj: Exec, timeout: float, local: bool
    ) -> None:
        super().__init__(stream, stack, timeout, "exec")
        self._exec = exec_obj
        self._local = local

    async def resize(self, cols: int, rows: int) -> None:
        with suppress(DockyardError), map_engine_errors("the resize"):
            async with asyncio.timeout(self._timeout):
                await self._exec.resize(w=cols, h=rows)

    async def _info(self) -> dict[str, Any]:
        with map_engine_errors("the exec inspect", not_found=_gone("the exec session")):
            async with asyncio.timeout(self._timeout):
                return await self._exec.inspect()

    async def signal(self, name: str) -> None:
        info = await self._info()
        for _ in range(100):
            # Running, but no pid yet: the engine has started the exec and not yet
            # recorded its process (seen when a session is ended right after it opened).
            # Polled, bounded, so that the signal is not lost.
            if not info.get("Running") or info.get("Pid"):
                break
            await asyncio.sleep(0.02)
            info = await self._info()
        pid = info.get("Pid")
        if not info.get("Running") or not pid:
            return
        if not self._local:
            raise EngineError(
                "signals to exec sessions need a local engine", code="SIGNAL_UNSUPPORTED"
            )
        # The engine has no API to signal an exec process; its host pid is in reach.
        with suppress(ProcessLookupError):
            os.kill(int(pid), _SIGNALS[name])

    async def terminate(self) -> None:
        with suppress(Exception):
            await self.signal("KILL")

    async def exit_code(self) -> int | None:
        for _ in range(100):
            info = await self._info()
            code = info.get("ExitCode")
            # The stream can end before the engine has recorded the exit: not running
            # yet no code is "not known yet", not "none" (issue 9 #7).
            if not info.get("Running") and code is not None:
                return int(code)
            await asyncio.sleep(0.02)  # the process is being reaped: poll, bounded
        return None


class AttachSession(_StreamSession):
    """The container's main process (its stdin and TTY)."""

    def __init__(
        self, stream: Stream, stack: AsyncExitStack, container: DockerContainer, timeout: float
    ) -> None:
        super().__init__(stream, stack, timeout, "attach")
        self._container = container

    async def resize(self, cols: int, rows: int) -> None:
        with suppress(DockyardError), map_engine_errors("the resize"):
            async with asyncio.timeout(self._timeout):
                await self._container.resize(w=cols, h=rows)

    async def signal(self, name: str) -> None:
        try:
            with map_engine_errors("the signal", not_found=_gone("the signal")):
                async with asyncio.timeout(self._timeout):
                    await self._container.kill(signal=f"SIG{name}")
        except EngineError as exc:
            if exc.details.get("engine_status") != 409:  # not running: nothing to signal
                raise

    async def terminate(self) -> None:
        return None  # detaching leaves the main process running

    async def exit_code(self) -> int | None:
        """The main process's exit code; None when the container is gone. An engine that
        fails says so (the session's final frame is that error, issue 9 #1)."""
        with map_engine_errors("the inspect", not_found=_gone("the container")):
            async with asyncio.timeout(self._timeout):
                for _ in range(100):
                    try:
                        info = await self._container.show()
                    except aiodocker.DockerError as exc:
                        if exc.status == 404:
                            return None
                        raise
                    state = info.get("State") or {}
                    if not state.get("Running"):
                        return int(state.get("ExitCode", 0))
                    await asyncio.sleep(0.02)  # the stream ended before the state did
        return None


@asynccontextmanager
async def _entered(stream: Stream) -> AsyncIterator[Stream]:
    """aiodocker's public ``async with`` on a stream: connects it, and closes it after."""
    async with stream:
        yield stream


async def open_exec(
    docker: aiodocker.Docker,
    name: str,
    cmd: list[str],
    *,
    tty: bool,
    cols: int,
    rows: int,
    user: str,
    deadline: float,
    local: bool,
) -> ExecSession:
    container = docker.containers.container(name)  # no inspect: the exec create says 404
    async with AsyncExitStack() as stack:
        with map_engine_errors("the exec session", not_found=_gone("the exec session")):
            async with asyncio.timeout(deadline):
                exec_obj = await container.exec(
                    cmd,
                    stdout=True,
                    stderr=True,
                    stdin=True,
                    tty=tty,
                    user=user,
                    workdir="/app",
                    environment={"TERM": "xterm-256color"},
                )
                stream = await stack.enter_async_context(_entered(exec_obj.start(detach=False)))
        session = ExecSession(stream, stack.pop_all(), exec_obj, deadline, local)
    if tty:
        await session.resize(cols, rows)
    return session


async def open_attach(docker: aiodocker.Docker, name: str, *, deadline: float) -> AttachSession:
    container = docker.containers.container(name)
    async with AsyncExitStack() as stack:
        with map_engine_errors("attach", not_found=_gone("attach")):
            async with asyncio.timeout(deadline):
                stream = container.attach(stdout=True, stderr=True, stdin=True, logs=False)
                await stack.enter_async_context(_entered(stream))
        return AttachSession(stream, stack.pop_all(), container, deadline)


async def recent_output(http: EngineTransport, name: str, max_bytes: int) -> bytes:
    """What the main process printed so far, the last ``max_bytes`` of it (TTY logs);
    nothing if the engine cannot say (the session goes on without a replay)."""
    try:
        async with asyncio.timeout(http.timeout):
            response = await http.open(
                f"containers/{name}/logs",
                what="the logs request",
                params={"stdout": "1", "stderr": "1", "tail": "5000"},
                read_timeout=http.timeout,
            )
            try:
                data = bytearray()
                async for chunk in stream_of(response, "log", 65536):
                    data += chunk
                    if len(data) > 4 * max_bytes:
                        del data[: len(data) - max_bytes]
            finally:
                response.close()
    except (DockyardError, TimeoutError):
        return b""
    return bytes(data[-max_bytes:])
