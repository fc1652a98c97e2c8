"""What the async client does without blocking the loop (its sync twin is ``_sync_io.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import IO, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
CHUNK = 256 * 1024


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def run_blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Disk work (zipping a folder, writing a download) in a thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def iter_file(
    file: IO[bytes], progress: Callable[[int], None] | None = None
) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK):
        if progress is not None:
            progress(len(chunk))
        yield chunk
