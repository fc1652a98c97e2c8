"""Output of a terminal as binary frames (``wire.py``), coalesced while the client side
is busy: fewer, larger WebSocket messages for bulk output, no added delay for a keystroke.

The engine hands over what a process writes in the pieces it wrote it (a ``cat`` of a
file: thousands of small chunks), and each WebSocket message costs the server a fixed
amount of work. A reader task takes chunks from the engine as they come; the sender
takes the next one and joins to it what has already arrived behind it of the same
channel, up to ``wire.MAX_PAYLOAD``. Nothing is ever waited for to fill a frame: when
the sender is idle, a chunk goes out alone as soon as it is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress

from dockyard.domain.terminal import wire
from dockyard.domain.terminal.framing import Output

# Chunks read ahead of the sender: bounded, so a slow client slows the process down
# (back-pressure) instead of growing memory here.
READ_AHEAD = 64


class _End:
    """The reader's last item: the stream ended, or ``error`` broke it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def batched_frames(
    read: Callable[[], Awaitable[Output | None]], cap: int = wire.MAX_PAYLOAD
) -> AsyncIterator[bytes | bytearray]:
    """The frames of everything ``read`` returns until it returns None; its failure is
    raised here after the frames read before it."""
    queue: asyncio.Queue[Output | _End] = asyncio.Queue(maxsize=READ_AHEAD)
    reader = asyncio.create_task(_read_all(read, queue), name="terminal-read")
    try:
        held: Output | _End | None = None
        while True:
            item = held if held is not None else await queue.get()
            held = None
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            frames, held = _join(item, queue, cap)
            for frame in frames:
                yield frame
    finally:
        reader.cancel()
        with suppress(BaseException):
            await reader


async def _read_all(
    read: Callable[[], Awaitable[Output | None]], queue: asyncio.Queue[Output | _End]
) -> None:
    try:
        while (out := await read()) is not None:
            if out.data:
                await queue.put(out)
    except Exception as exc:
        await queue.put(_End(exc))
        return
    await queue.put(_End())


def _join(
    first: Output, queue: asyncio.Queue[Output | _End], cap: int
) -> tuple[list[bytes] | list[bytearray], Output | _End | None]:
    """``first`` as frames, with the chunks of its channel already queued behind it joined
    to it (up to ``cap`` bytes in all); the first item that did not fit, to send next."""
    if queue.empty() or len(first.data) >= cap:
        return wire.output_frames(first.stream, first.data, cap), None
    frame = bytearray((wire.CHANNELS[first.stream],))
    frame += first.data
    while not queue.empty():
        item = queue.get_nowait()
        if isinstance(item, _End) or item.stream != first.stream:
            return [frame], item
        if len(frame) - 1 + len(item.data) > cap:
            return [frame], item
        frame += item.data
    return [frame], None
