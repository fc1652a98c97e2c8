"""Interactive streams through the Engine API: exec sessions and attaching to PID 1.

Both are hijacked HTTP connections (aiodocker's ``Stream``); its queue is flow
controlled, so a client that reads slowly slows the process down instead of growing
memory here.
"""

from __future__ import annotations

import asyncio
import os
import signal as signals
from contextlib import suppress
from typing import Any

import aiodocker
from aiodocker.stream import Stream

from dockyard.domain.terminal.framing import Output
from dockyard.errors import EngineError, NotFoundError

_SIGNALS = {
    "INT": signals.SIGINT,
    "TERM": signals.SIGTERM,
    "KILL": signals.SIGKILL,
    "HUP": signals.SIGHUP,
    "QUIT": signals.SIGQUIT,
    "USR1": signals.SIGUSR1,
    "USR2": signals.SIGUSR2,
}


def _translate(exc: aiodocker.DockerError, what: str) -> Exception:
    if exc.status == 404:
        return NotFoundError(f"{what} is gone from the engine", code="CONTAINER_MISSING")
    return EngineError(
        f"the engine refused {what}: {exc.message}", details={"engine_status": exc.status}
    )


class _StreamSession:
    def __init__(self, stream: Stream, timeout: float) -> None:
        self._stream = stream
        self._timeout = timeout

    async def read(self) -> Output | None:
        message = await self._stream.read_out()
        if message is None:
            return None
        return Output("stderr" if message.stream == 2 else "stdout", message.data)

    async def write(self, data: bytes) -> None:
        await self._stream.write_in(data)

    async def close(self) -> None:
        with suppress(Exception):
            await self._stream.close()


class ExecSession(_StreamSession):
    """A new process in the container (``cmd=``)."""

    def __init__(self, stream: Stream, exec_obj: Any, timeout: float, local: bool) -> None:
        super().__init__(stream, timeout)
        self._exec = exec_obj
        self._local = local

    async def resize(self, cols: int, rows: int) -> None:
        with suppress(aiodocker.DockerError):
            async with asyncio.timeout(self._timeout):
                await self._exec.resize(w=cols, h=rows)

    async def _info(self) -> dict[str, Any]:
        async with asyncio.timeout(self._timeout):
            info: dict[str, Any] = await self._exec.inspect()
        return info

    async def signal(self, name: str) -> None:
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
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.02)  # the process is being reaped: poll, bounded
        return None


class AttachSession(_StreamSession):
    """The container's main process (its stdin and TTY)."""

    def __init__(self, stream: Stream, container: Any, timeout: float) -> None:
        super().__init__(stream, timeout)
        self._container = container

    async def resize(self, cols: int, rows: int) -> None:
        with suppress(aiodocker.DockerError):
            async with asyncio.timeout(self._timeout):
                await self._container.resize(w=cols, h=rows)

    async def signal(self, name: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._container.kill(signal=f"SIG{name}")
        except aiodocker.DockerError as exc:
            if exc.status != 409:  # not running any more: nothing to signal
                raise _translate(exc, "the signal") from exc

    async def terminate(self) -> None:
        return None  # detaching leaves the main process running

    async def exit_code(self) -> int | None:
        try:
            async with asyncio.timeout(self._timeout):
                for _ in range(100):
                    info = await self._container.show()
                    state = info.get("State") or {}
                    if not state.get("Running"):
                        return int(state.get("ExitCode", 0))
                    await asyncio.sleep(0.02)  # the stream ended before the state did
        except aiodocker.DockerError:
            return None
        return None


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
    try:
        async with asyncio.timeout(deadline):
            container = await docker.containers.get(name)
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
            stream = exec_obj.start(detach=False)
            await stream._init()
            if tty:
                with suppress(aiodocker.DockerError):
                    await exec_obj.resize(w=cols, h=rows)
    except aiodocker.DockerError as exc:
        raise _translate(exc, "the exec session") from exc
    return ExecSession(stream, exec_obj, deadline, local)


async def open_attach(docker: aiodocker.Docker, name: str, *, deadline: float) -> AttachSession:
    try:
        async with asyncio.timeout(deadline):
            container = await docker.containers.get(name)
            stream = container.attach(stdout=True, stderr=True, stdin=True, logs=False)
            await stream._init()
    except aiodocker.DockerError as exc:
        raise _translate(exc, "attach") from exc
    return AttachSession(stream, container, deadline)


async def recent_output(
    docker: aiodocker.Docker, name: str, max_bytes: int, deadline: float
) -> bytes:
    """What the main process printed so far, the last ``max_bytes`` of it (TTY logs)."""
    try:
        async with asyncio.timeout(deadline):
            async with docker._query(
                f"containers/{name}/logs",
                params={"stdout": "1", "stderr": "1", "tail": "5000"},
            ) as response:
                data = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > 4 * max_bytes:
                        del data[: len(data) - max_bytes]
    except (aiodocker.DockerError, TimeoutError):
        return b""
    return bytes(data[-max_bytes:])
