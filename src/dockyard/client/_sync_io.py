"""What the sync client does where the async one avoids blocking (``_async_io.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import IO, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
CHUNK = 256 * 1024


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def run_blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return fn(*args, **kwargs)


def iter_file(file: IO[bytes], progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    while chunk := file.read(CHUNK):
        if progress is not None:
            progress(len(chunk))
        yield chunk
