"""An upload, checked whole before anything is written, then written one of two ways.

``stage``: unpacked into a private staging folder on this host (``HostApp`` moves it
into ``app/`` by one journaled transaction). ``checked``: the same checks, then the
entries to write, which ``tar_chunks`` turns into one tar stream - the body of the
engine's archive PUT for a volume on another engine (``EngineApp``), one pass over the
data with nothing written on this host.

What ``checked`` decides before the first byte is sent, so that a refusal never leaves
half an upload on an engine: a ZIP's central directory and local headers (names, types,
modes, sizes, entry count, ratios, overlaps: ``archives.inspect``) and then its data -
every entry is read once and its CRC and length checked, nothing written (a stored ZIP's
check is a read from the page cache); a tar's headers are walked whole and a compressed
tar's stream read to its end (``tars.open_tar``) before its names are judged. Blocking:
run in a thread.
"""

from __future__ import annotations

import os
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

from dockyard.domain.files.archives import ArchiveLimits, Plan, inspect, refused, unpack
from dockyard.domain.files.tars import inspect_tar, open_tar, unpack_tar
from dockyard.errors import StorageIOError, ValidationError

CHUNK = 1024 * 1024
_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Staged:
    """What an upload wrote: regular files and their bytes."""

    files: int
    bytes: int


@dataclass(frozen=True)
class Member:
    """One checked entry, relative to the target folder. ``size`` None: a folder."""

    parts: tuple[str, ...]
    name: str  # as the archive spells it, for errors
    mode: int
    size: int | None = None
    open: Callable[[], IO[bytes]] | None = None


@dataclass(frozen=True)
class Checked:
    staged: Staged
    members: list[Member]


class Upload(Protocol):
    """A spooled upload: unpacked into staging (this host), or checked entries (engines)."""

    def stage(self, staging_fd: int) -> Staged: ...
    def checked(self) -> AbstractContextManager[Checked]: ...


def _mode(executable: int) -> int:
    return 0o755 if executable & 0o111 else 0o644


@dataclass(frozen=True)
class ZipUpload:
    path: Path
    limits: ArchiveLimits
    uid: int
    gid: int
    source: str = "the body"

    def _open(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValidationError(
                f"{self.source} is not a valid ZIP archive",
                code="INVALID_ZIP",
                details={"reason": str(exc)[:200]},
            ) from None

    def stage(self, staging_fd: int) -> Staged:
        with self._open() as archive:
            plan = inspect(archive, self.limits)
            try:
                written = unpack(archive, plan, staging_fd, self.uid, self.gid, self.limits)
            except OSError as exc:
                raise StorageIOError(f"cannot unpack: {exc.strerror}") from exc
        return Staged(len(plan.files), written)

    @contextmanager
    def checked(self) -> Iterator[Checked]:
        with self._open() as archive:
            plan = inspect(archive, self.limits)
            _verify_zip_data(archive, plan)
            members = _folders(plan) + [
                Member(
                    parts,
                    info.orig_filename,
                    _mode(info.external_attr >> 16),
                    info.file_size,
                    partial(archive.open, info),
                )
                for parts, info in plan.files
            ]
            yield Checked(Staged(len(plan.files), plan.total_bytes), members)


def _folders(plan: Plan[Any]) -> list[Member]:
    return [Member(parts, "/".join(parts), 0o755) for parts in plan.dirs]


def _verify_zip_data(archive: zipfile.ZipFile, plan: Plan[zipfile.ZipInfo]) -> None:
    """Every entry's data read once (decompressed), its length and CRC checked."""
    for _parts, info in plan.files:
        seen = 0
        try:
            with archive.open(info) as src:
                while chunk := src.read(CHUNK):
                    seen += len(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise refused(info.orig_filename, f"corrupt data ({exc})") from exc
        if seen != info.file_size:
            raise refused(info.orig_filename, "data ends before the size it declares")


@dataclass(frozen=True)
class TarUpload:
    path: Path
    limits: ArchiveLimits
    uid: int
    gid: int

    def stage(self, staging_fd: int) -> Staged:
        with open_tar(self.path, self.limits) as tar:
            plan = inspect_tar(tar, self.limits)
            try:
                written = unpack_tar(tar, plan, staging_fd, self.uid, self.gid, self.limits)
            except OSError as exc:
                raise StorageIOError(f"cannot unpack: {exc.strerror}") from exc
        return Staged(len(plan.files), written)

    @contextmanager
    def checked(self) -> Iterator[Checked]:
        with open_tar(self.path, self.limits) as tar:  # headers and stream checked whole
            plan = inspect_tar(tar, self.limits)
            members = _folders(plan) + [
                Member(parts, member.name, _mode(member.mode), member.size, _extract(tar, member))
                for parts, member in plan.files
            ]
            yield Checked(Staged(len(plan.files), plan.total_bytes), members)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def opened() -> IO[bytes]:
        src = tar.extractfile(member)
        if src is None:
            raise refused(member.name, "not a regular file")
        return src

    return opened


@dataclass(frozen=True)
class FileUpload:
    """One file kept as it is, under ``name`` (a fetched data file, a script)."""

    path: Path
    name: str
    uid: int
    gid: int

    def stage(self, staging_fd: int) -> Staged:
        os.rename(self.path, self.name, dst_dir_fd=staging_fd)
        os.chown(self.name, self.uid, self.gid, dir_fd=staging_fd, follow_symlinks=False)
        os.chmod(self.name, 0o644, dir_fd=staging_fd)
        size = os.stat(self.name, dir_fd=staging_fd, follow_symlinks=False).st_size
        return Staged(1, size)

    def _open(self) -> IO[bytes]:
        return self.path.open("rb")

    @contextmanager
    def checked(self) -> Iterator[Checked]:
        size = self.path.stat().st_size
        member = Member((self.name,), self.name, 0o644, size, self._open)
        yield Checked(Staged(1, size), [member])


def tar_chunks(
    checked: Checked, target: tuple[str, ...], uid: int, gid: int
) -> Generator[bytes, None, None]:
    """One tar of the target's folders (made if missing) and the checked entries below
    it, owned by ``uid:gid``, in chunks of about ``CHUNK`` bytes. An entry whose data is
    not the size it declared (the file changed under us) raises: the stream breaks."""
    now = int(time.time())
    head = bytearray()
    folders = [Member(target[:depth], "", 0o755) for depth in range(1, len(target) + 1)]
    for member in folders + [
        Member(target + m.parts, m.name, m.mode, m.size, m.open) for m in checked.members
    ]:
        head += _header(member, uid, gid, now)
        if member.size is None or member.open is None:
            continue
        if head:
            yield bytes(head)
            head.clear()
        yield from _data(member)
        if member.size % _BLOCK:
            head += bytes(_BLOCK - member.size % _BLOCK)
    head += bytes(2 * _BLOCK)
    yield bytes(head)


def _header(member: Member, uid: int, gid: int, mtime: int) -> bytes:
    info = tarfile.TarInfo("/".join(member.parts))
    if member.size is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = member.size
    info.mode = member.mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _data(member: Member) -> Iterator[bytes]:
    assert member.open is not None and member.size is not None
    left = member.size
    with member.open() as src:
        while left > 0:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise refused(member.name, "data ends before the size it declares")
            left -= len(chunk)
            yield chunk
