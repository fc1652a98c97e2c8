"""The lazy walk below a folder descriptor (download-zip, its size pass): flat memory
whatever the file count, bounded descriptors whatever the depth, never a link followed."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from dockyard.errors import ValidationError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def shown(parts: Sequence[str]) -> str:
    """How a path below /app is named in messages."""
    return "/app/" + "/".join(parts) if parts else "/app"


# Each level of a walk holds two descriptors (the folder's and its scandir's).
MAX_DEPTH = 64

_Level = tuple[int, tuple[str, ...], "os._ScandirIterator[str]"]


def lazy_walk(
    top: int, at: tuple[str, ...]
) -> Iterator[tuple[int, tuple[str, ...], os.DirEntry[str]]]:
    """Everything below the folder ``top`` (``at`` under /app), depth first, as (parent
    descriptor, parts relative to ``top``, entry); folders are entered through
    ``O_NOFOLLOW`` descriptors, never by name.

    An explicit stack of open ``scandir`` iterators, one per level: no list of entries is
    ever made, and the depth (hence the descriptors held) is bounded by ``MAX_DEPTH``."""
    levels: list[_Level] = [(top, (), os.scandir(top))]
    try:
        while levels:
            fd, prefix, entries = levels[-1]
            entry = next(entries, None)
            if entry is None:
                _close_level(levels.pop(), top)
                continue
            rel = (*prefix, entry.name)
            if not entry.is_dir(follow_symlinks=False):
                yield fd, rel, entry
                continue
            if len(levels) > MAX_DEPTH:
                raise ValidationError(
                    f"{shown((*at, *rel))} is nested more than {MAX_DEPTH} folders deep",
                    code="FOLDER_TOO_DEEP",
                    details={"path": shown((*at, *rel)), "limit": MAX_DEPTH},
                )
            try:
                child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # gone, or swapped for a link meanwhile: skip, never follow
            try:
                levels.append((child, rel, os.scandir(child)))
            except OSError:
                os.close(child)
    finally:
        for level in reversed(levels):
            _close_level(level, top)


def _close_level(level: _Level, top: int) -> None:
    fd, _prefix, entries = level
    entries.close()
    if fd != top:
        os.close(fd)
