"""Bodies out of a container (SPEC §4): one file, a folder as ZIP, the changes as tar.gz.

Paths under ``/app`` are read from the host folder through ``HostTree`` (on the local
engine; on another, ``/app`` is a volume there and read like any other path); any other path
is spooled from the Engine API's archive endpoint (it works on stopped containers too)
into a private temporary tar, read from there, and removed when the body is done.
Bodies are blocking iterators: the API runs them in a thread.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.domain.files.hostfs import Entry, HostTree, kind_of
from dockyard.domain.files.paths import ContainerPath, parse
from dockyard.domain.files.zipwriter import ZipMember, zip_chunks
from dockyard.domain.ports import ChangeKind, Engine
from dockyard.errors import NotFoundError, PayloadTooLargeError, ValidationError

CHUNK = 1024 * 1024


@dataclass
class Download:
    """A body to stream: ``chunks`` is a blocking iterator (run it in a thread)."""

    filename: str
    size: int | None
    chunks: Iterator[bytes]


class Downloads:
    """Reads out of one service's containers; access is checked by the caller."""

    def __init__(self, engine: Engine, tmp_dir: Path, max_zip_bytes: Callable[[], int]) -> None:
        self._engine = engine
        self._tmp = tmp_dir
        self._max_zip_bytes = max_zip_bytes  # read per request: the limits may change

    async def file(self, cuid: str, tree: HostTree | None, path: ContainerPath) -> Download:
        """``tree``: /app's host folder (None: /app is on the engine, read through it)."""
        if path.in_app and tree is not None:
            fd = await asyncio.to_thread(tree.open_regular, path.app_parts)
            size = os.fstat(fd).st_size
            return Download(path.name, size, _read_fd(fd))
        spool = await self.spool_archive(cuid, path)
        try:
            member, size = await asyncio.to_thread(_single_member, spool)
        except BaseException:
            discard(spool)
            raise
        return Download(path.name, size, _read_tar_member(spool, member))

    async def zip(self, cuid: str, tree: HostTree | None, path: ContainerPath) -> Download:
        name = f"{path.name}.zip"
        if path.in_app and tree is not None:
            total = await asyncio.to_thread(tree.size, path.app_parts)
            self._check_zip_size(total)
            await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
            members = _host_members(tree, path.app_parts)
            return Download(name, None, zip_chunks(members, self._tmp))
        spool = await self.spool_archive(cuid, path)
        return Download(name, None, zip_chunks(_tar_members(spool), self._tmp))

    def _check_zip_size(self, total: int) -> None:
        limit = self._max_zip_bytes()
        if total > limit:
            raise PayloadTooLargeError(
                f"the folder holds {total} bytes; download-zip is limited to {limit}",
                code="DOWNLOAD_TOO_LARGE",
                details={"bytes": total, "limit": limit},
            )

    async def listing(self, cuid: str, path: ContainerPath) -> list[Entry]:
        """A folder outside /app, from the engine's archive of it."""
        spool = await self.spool_archive(cuid, path)
        try:
            return await asyncio.to_thread(_tar_listing, spool)
        finally:
            discard(spool)

    async def changes(self, cuid: str) -> Download:
        """Added and changed files (not folders) versus the image, as one tar.gz."""
        changes = await self._engine.changes(cuid)
        added_dirs: list[str] = []
        spools: list[Path] = []
        try:
            for change in sorted(changes, key=lambda c: c.path):
                where = change.path
                if change.kind is ChangeKind.DELETED or any(
                    where.startswith(d + "/") for d in added_dirs
                ):
                    continue
                info = await self._engine.archive_stat(cuid, where)
                if info is None:
                    continue
                if info.is_dir and change.kind is ChangeKind.CHANGED:
                    continue  # a folder whose contents changed: its files are listed too
                if info.is_dir:
                    added_dirs.append(where)
                spools.append(await self.spool_archive(cuid, parse(where)))
        except BaseException:
            for spool in spools:
                discard(spool)
            raise
        return Download(f"{cuid}-changes.tar.gz", None, _merged_targz(spools))

    async def spool_archive(self, cuid: str, path: ContainerPath) -> Path:
        """The engine's tar of ``path``, in a private temporary file (the caller removes it)."""
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="archive-", suffix=".tar")
        os.close(fd)
        spool = Path(name)
        try:
            await self._engine.archive_to(cuid, path.text, spool, self._max_zip_bytes())
        except BaseException:
            discard(spool)
            raise
        return spool


def discard(path: Path) -> None:
    """Remove a spool (quick: one unlink; also on the way out of a cancelled request)."""
    path.unlink(missing_ok=True)


# -- host files ----------------------------------------------------------------------


def _read_fd(fd: int) -> Iterator[bytes]:
    try:
        while chunk := os.read(fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)


class _FileChunks:
    """A file's bytes (``head`` first, if read already, then ``CHUNK`` pieces); the
    descriptor is closed at the end or by ``close()``, even if reading never started (a
    generator's ``finally`` would not run)."""

    def __init__(self, fd: int, head: bytes = b"") -> None:
        self._fd = fd
        self._head = head

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._head:
                yield self._head
            while chunk := os.read(self._fd, CHUNK):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _host_members(tree: HostTree, parts: tuple[str, ...]) -> Iterator[ZipMember]:
    for rel, st, fd in tree.walk_files(parts):
        chunks: Iterable[bytes] = _FileChunks(fd)
        if st.st_size < CHUNK:
            # Most files: one read of their own size (one byte more tells that they grew
            # meanwhile). A 1 MiB read would cost an mmap, mremap and munmap per file.
            try:
                head = os.read(fd, st.st_size + 1)
            except BaseException:
                os.close(fd)
                raise
            if len(head) <= st.st_size:
                os.close(fd)
                chunks = (head,)
            else:
                chunks = _FileChunks(fd, head)
        mode = stat.S_IMODE(st.st_mode) | stat.S_IFREG
        yield ZipMember("/".join(rel), st.st_mtime, mode, st.st_size, chunks)


# -- the engine's tars (spooled; the spool is removed when the body is done) ---------


def _read_handle(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def _tar_members(spool: Path) -> Iterator[ZipMember]:
    try:
        with tarfile.open(spool, mode="r:") as tar:
            while (member := tar.next()) is not None:
                # TarFile keeps every header it reads in ``members``: drop them as we go,
                # so that memory stays flat however many files the archive holds.
                tar.members.clear()  # type: ignore[attr-defined]  # not in typeshed
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                name = member.name.split("/", 1)[1] if "/" in member.name else member.name
                mode = (member.mode & 0o777) | stat.S_IFREG
                yield ZipMember(name, member.mtime, mode, member.size, _read_handle(handle))
    finally:
        spool.unlink(missing_ok=True)


def _single_member(spool: Path) -> tuple[str, int]:
    with tarfile.open(spool, mode="r:") as tar:
        first = tar.next()
        if first is None:
            raise NotFoundError("nothing at that path", code="PATH_NOT_FOUND")
        if not first.isfile():
            raise ValidationError("that path is not a regular file", code="NOT_A_FILE")
        return first.name, first.size


def _read_tar_member(spool: Path, name: str) -> Iterator[bytes]:
    try:
        with tarfile.open(spool, mode="r:") as tar:
            handle = tar.extractfile(name)
            if handle is None:
                return
            while chunk := handle.read(CHUNK):
                yield chunk
    finally:
        spool.unlink(missing_ok=True)


def _tar_listing(spool: Path) -> list[Entry]:
    found: list[Entry] = []
    with tarfile.open(spool, mode="r:") as tar:
        for member in tar:
            parts = member.name.rstrip("/").split("/")
            if len(parts) != 2:
                continue  # the folder itself, or deeper than its direct children
            mode = member.mode | _tar_type(member)
            found.append(
                Entry(
                    parts[1], kind_of(mode), member.size, member.mode & 0o7777, float(member.mtime)
                )
            )
    return sorted(found, key=lambda e: e.name)


def _tar_type(member: tarfile.TarInfo) -> int:
    if member.isdir():
        return stat.S_IFDIR
    if member.issym():
        return stat.S_IFLNK
    if member.isfile():
        return stat.S_IFREG
    return 0


def _merged_targz(spools: list[Path]) -> Iterator[bytes]:
    """One tar.gz of several engine archives, built in a temporary file, then streamed
    (memory stays flat whatever the files' size)."""
    fd, name = tempfile.mkstemp(
        prefix="changes-", suffix=".tar.gz", dir=spools[0].parent if spools else None
    )
    os.close(fd)
    out_path = Path(name)
    try:
        with tarfile.open(out_path, mode="w:gz", compresslevel=6) as out:
            for spool in spools:
                with tarfile.open(spool, mode="r:") as tar:
                    for member in tar:
                        handle = tar.extractfile(member) if member.isfile() else None
                        out.addfile(member, handle)
        yield from _read_fd(os.open(out_path, os.O_RDONLY))
    finally:
        out_path.unlink(missing_ok=True)
        for spool in spools:
            with suppress(OSError):
                spool.unlink()
