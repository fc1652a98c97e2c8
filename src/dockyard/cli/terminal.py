"""``exec``, ``attach`` and ``run -it``: a local terminal joined to a remote one.

With ``-t`` on a terminal, the local one goes into raw mode (so Ctrl-C, Ctrl-D and the
arrows are bytes for the remote process), its size is sent at the start and on every
SIGWINCH, and it is restored on every way out: the end of the session, an exception,
SIGTERM or SIGHUP (they cancel the session; ``finally`` restores). The remote exit code
is the command's. Built on the SDK's async terminal (binary frames)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from dockyard.cli.parsing import UsageError

if TYPE_CHECKING:
    from dockyard.cli.session import Session
    from dockyard.client import AsyncDockyard, Terminal

READ_CHUNK = 64 * 1024


@contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """The terminal at ``fd`` in raw mode for the block; its attributes put back after,
    whatever happens."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def window_size() -> tuple[int, int]:
    """The local terminal's columns and rows; a terminal that reports no size (0 x 0: a
    pseudo-terminal nobody sized, as ``script`` or some CI runners make) counts as none,
    and COLUMNS/LINES or 80 x 24 are used (the server takes 1..1000)."""
    for stream in (sys.stdout, sys.stdin, sys.stderr):
        try:
            size = os.get_terminal_size(stream.fileno())
        except (OSError, ValueError):
            continue
        if size.columns > 0 and size.lines > 0:
            return size.columns, size.lines
    fallback = shutil.get_terminal_size()
    return fallback.columns, fallback.lines


def exec_(args: argparse.Namespace, session: Session) -> int:
    if not args.cmd:
        raise UsageError("exec: give a command to run")
    cmd = args.cmd[0] if len(args.cmd) == 1 else shlex.join(args.cmd)
    return asyncio.run(_session(session, args.cuid, cmd, args.tty, args.interactive))


def attach(args: argparse.Namespace, session: Session) -> int:
    return asyncio.run(_session(session, args.cuid, None, True, True))


def run_interactive(
    session: Session, image: str, fields: dict[str, Any], *, tty: bool, remove: bool
) -> int:
    """``run -it``: create and start the container, attach to its main process."""
    with session.client() as dy:
        box = dy.containers.create(image, start=True, **fields)
        try:
            code = asyncio.run(_session(session, box.cuid, None, tty, True))
        finally:
            if remove:
                dy.containers.delete(box.cuid)
    return code


async def _session(session: Session, cuid: str, cmd: str | None, tty: bool, stdin: bool) -> int:
    """One terminal session, the local terminal raw while it lasts (when ``tty`` and it
    is one); the remote exit code, or 128 + N when signal N (TERM, HUP) ended it."""
    fd = sys.stdin.fileno()
    local_tty = tty and os.isatty(fd)
    size = window_size()
    stopped: list[int] = []
    async with session.async_client() as dy:
        try:
            with _cancel_on(signal.SIGTERM, stopped), _cancel_on(signal.SIGHUP, stopped):
                if local_tty:
                    with raw_mode(fd):
                        return await _pump(dy, cuid, cmd, tty, stdin, size)
                return await _pump(dy, cuid, cmd, tty, stdin, size)
        except asyncio.CancelledError:
            if not stopped:
                raise
            return 128 + stopped[0]


async def _pump(
    dy: AsyncDockyard,
    cuid: str,
    cmd: str | None,
    tty: bool,
    stdin: bool,
    size: tuple[int, int],
) -> int:
    cols, rows = size
    loop = asyncio.get_running_loop()
    async with dy.terminal(cuid, cmd=cmd, tty=tty, cols=cols, rows=rows) as term:
        pending: set[asyncio.Task[None]] = set()

        def later(coro: Any) -> None:
            job = loop.create_task(coro)
            pending.add(job)
            job.add_done_callback(pending.discard)

        loop.add_signal_handler(signal.SIGWINCH, lambda: later(term.resize(*window_size())))
        if not tty:  # no raw mode: Ctrl-C is a signal here, sent on to the process
            loop.add_signal_handler(signal.SIGINT, lambda: later(term.signal("INT")))
        inputs: asyncio.Queue[bytes | None] = asyncio.Queue()
        if stdin:
            reader = _read_stdin(loop, inputs)
        else:  # like docker's exec without -i: the process's stdin is empty
            reader = None
            if not tty:
                inputs.put_nowait(None)
        writer = loop.create_task(_send_input(term, inputs))
        try:
            await _copy_output(term)
        finally:
            writer.cancel()
            if reader is not None:
                reader.cancel()
            with suppress(ValueError, OSError):
                loop.remove_reader(sys.stdin.fileno())
            loop.remove_signal_handler(signal.SIGWINCH)
            loop.remove_signal_handler(signal.SIGINT)
    return term.exit_code if term.exit_code is not None else 0


async def _send_input(term: Terminal, inputs: asyncio.Queue[bytes | None]) -> None:
    """Local input to the remote process, in order; at its end (None) the process's
    stdin is closed, so that it reads EOF (``echo hi | dockyard exec -i CUID cat``)."""
    while (data := await inputs.get()) is not None:
        await term.send(data)
    if term.binary:  # the JSON frames have no end of input
        await term.close_stdin()


def _read_stdin(
    loop: asyncio.AbstractEventLoop, inputs: asyncio.Queue[bytes | None]
) -> asyncio.Future[None] | None:
    """Local stdin into ``inputs`` as it comes, then None at its end: a terminal or a
    pipe is watched by the loop; a regular file (which epoll refuses) is read in a
    thread. The thread's future, to cancel, or None."""
    fd = sys.stdin.fileno()

    def on_input() -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except OSError:
            data = b""
        if not data:  # end of input
            loop.remove_reader(fd)
            inputs.put_nowait(None)
            return
        inputs.put_nowait(data)

    try:
        loop.add_reader(fd, on_input)
    except (OSError, ValueError, PermissionError):
        return loop.run_in_executor(None, _read_file, loop, fd, inputs)
    return None


def _read_file(
    loop: asyncio.AbstractEventLoop, fd: int, inputs: asyncio.Queue[bytes | None]
) -> None:
    while data := os.read(fd, READ_CHUNK):
        loop.call_soon_threadsafe(inputs.put_nowait, data)
    loop.call_soon_threadsafe(inputs.put_nowait, None)


async def _copy_output(term: Terminal) -> None:
    out = sys.stdout.buffer
    async for _, data in term:
        out.write(data)
        out.flush()


@contextmanager
def _cancel_on(signum: int, stopped: list[int]) -> Iterator[None]:
    """Signal ``signum`` cancels the running session (``finally`` blocks restore the
    terminal), noted in ``stopped``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        stopped.append(signum)
        task.cancel()

    loop.add_signal_handler(signum, stop)
    try:
        yield
    finally:
        loop.remove_signal_handler(signum)
