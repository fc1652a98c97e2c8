"""Binary output frames coalesced while the sender is busy (domain/terminal/batching.py):
chunks already read are joined per channel up to the cap, in order; a lone chunk goes out
at once; a broken stream raises after what was read before it."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.domain.terminal import wire
from dockyard.domain.terminal.batching import batched_frames
from dockyard.domain.terminal.framing import Output


class Source:
    """Chunks handed out as ``read`` asks; ``gate`` holds the reader back (with
    ``step``, it closes again after each chunk: the next one has not arrived yet)."""

    def __init__(self, chunks: list[Output | Exception], step: bool = False) -> None:
        self.chunks = list(chunks)
        self.step = step
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self) -> Output | None:
        await self.gate.wait()
        if not self.chunks:
            return None
        item = self.chunks.pop(0)
        if self.step:
            self.gate.clear()
        if isinstance(item, Exception):
            raise item
        return item


async def collect(source: Source, cap: int = wire.MAX_PAYLOAD) -> list[bytes]:
    frames = []
    async for frame in batched_frames(source.read, cap):
        frames.append(bytes(frame))
        await asyncio.sleep(0)  # a send that yields: the reader runs ahead meanwhile
    return frames


async def test_queued_chunks_of_one_channel_are_joined_in_order() -> None:
    chunks: list[Output | Exception] = [Output("stdout", b"%d," % i) for i in range(10)]
    frames = await collect(Source(chunks))
    assert b"".join(f[1:] for f in frames) == b"".join(b"%d," % i for i in range(10))
    assert all(f[0] == wire.STDOUT for f in frames)
    assert len(frames) < 10


async def test_channels_are_never_mixed_and_the_cap_holds() -> None:
    chunks: list[Output | Exception] = [
        Output("stdout", b"aaaa"),
        Output("stdout", b"bbbb"),
        Output("stderr", b"EE"),
        Output("stdout", b"cccc"),
        Output("stdout", b"dddd"),
        Output("stdout", b"eeeeeeeeee"),
    ]
    frames = await collect(Source(chunks), cap=8)
    assert all(len(f) - 1 <= 8 for f in frames)
    out = [(f[0], f[1:]) for f in frames]
    assert b"".join(d for c, d in out if c == wire.STDOUT) == b"aaaabbbbccccdddd" + b"e" * 10
    assert [d for c, d in out if c == wire.STDERR] == [b"EE"]
    stderr_at = next(i for i, (c, _) in enumerate(out) if c == wire.STDERR)
    assert b"".join(d for _, d in out[:stderr_at]) == b"aaaabbbb"


async def test_a_lone_chunk_is_sent_without_waiting_for_more() -> None:
    source = Source([Output("stdout", b"x"), Output("stdout", b"y")], step=True)
    frames = batched_frames(source.read)
    # the reader is held after "x": its frame must come out on its own
    assert bytes(await asyncio.wait_for(anext(frames), timeout=5)) == b"\x01x"
    source.gate.set()
    assert bytes(await asyncio.wait_for(anext(frames), timeout=5)) == b"\x01y"
    source.gate.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(frames), timeout=5)


async def test_a_broken_stream_raises_after_the_frames_read_before_it() -> None:
    source = Source([Output("stdout", b"ok"), RuntimeError("engine stream broke")])
    seen: list[bytes] = []
    with pytest.raises(RuntimeError, match="engine stream broke"):
        async for frame in batched_frames(source.read):
            seen.append(bytes(frame))
    assert b"".join(f[1:] for f in seen) == b"ok"


def test_a_large_chunk_is_split_at_the_cap() -> None:
    frames = wire.output_frames("stderr", b"z" * 10, cap=4)
    assert frames == [b"\x02zzzz", b"\x02zzzz", b"\x02zz"]
