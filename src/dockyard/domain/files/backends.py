"""Where a container's ``/app`` lives: one Protocol, two places (issue 12).

``HostApp``: on the local engine, ``/app`` is a folder of this host (``app/`` of the
project), written by the journaled move of ``hostfs.Transaction`` (all or nothing) and
read through ``HostTree``. ``EngineApp``: on another engine, ``/app`` is the container's
named volume there; nothing of it is on this host. Both take the same staged upload:
the archive is checked and unpacked under the same rules (archives.py, tars.py: no
links, no paths out, the entry, size and ratio limits, owned by the containers' user)
into a private staging folder first, so a refused upload never reaches ``/app``.
``EngineApp`` then sends the staged files as one tar to the engine's archive endpoint
(it works on created and stopped containers too), which extracts it below ``/app``.

Atomicity on an engine: everything that can refuse an upload (the archive's checks,
limits, a file where a folder is wanted) is decided before a byte goes to the engine;
the engine's extraction itself is one request but not a transaction - if the engine or
the connection dies in the middle, part of the files may be there (the 503 says so; the
same upload again completes it). The engine resolves every path inside the container's
own file system, so nothing outside the container can be reached.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.routing import ArchiveEngine
from dockyard.domain.files.downloads import Download, Downloads
from dockyard.domain.files.hostfs import Entry, HostTree, Transaction
from dockyard.domain.files.paths import ContainerPath
from dockyard.domain.models import ContainerRecord
from dockyard.errors import EngineError, StorageIOError

log = structlog.get_logger("dockyard.files")

APP = "/app"


@dataclass(frozen=True)
class Staged:
    """What a staging step left in the staging folder: regular files and their bytes."""

    files: int
    bytes: int


Stager = Callable[[int], Staged]  # given the staging folder's descriptor


class AppFiles(Protocol):
    """A container's ``/app``: staged uploads in, listings and downloads out."""

    async def apply(
        self, record: ContainerRecord, target: tuple[str, ...], stage: Stager
    ) -> Staged: ...
    async def listing(self, record: ContainerRecord, path: ContainerPath) -> list[Entry]: ...
    async def file(self, record: ContainerRecord, path: ContainerPath) -> Download: ...
    async def zip(self, record: ContainerRecord, path: ContainerPath) -> Download: ...


@contextmanager
def dir_fd(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


class HostApp:
    """``/app`` as the project's ``app/`` folder on this host."""

    def __init__(
        self, containers: ContainerService, downloads: Downloads, uid: int, gid: int
    ) -> None:
        self._containers = containers
        self._downloads = downloads
        self._uid = uid
        self._gid = gid

    def tree(self, record: ContainerRecord) -> HostTree:
        return HostTree(str(self._containers.app_dir(record.cuid)), self._uid, self._gid)

    async def apply(
        self, record: ContainerRecord, target: tuple[str, ...], stage: Stager
    ) -> Staged:
        project = self._containers.project_dir(record.cuid)
        return await asyncio.to_thread(self._apply, project, self.tree(record), target, stage)

    def _apply(
        self, project: Path, tree: HostTree, target: tuple[str, ...], stage: Stager
    ) -> Staged:
        """Stage into a private folder beside ``app/``, then move it all in, or nothing."""
        staging = tempfile.mkdtemp(dir=project, prefix=".staging-")
        backup = tempfile.mkdtemp(dir=project, prefix=".backup-")
        keep_backup = False
        try:
            with dir_fd(staging) as staging_fd, dir_fd(backup) as backup_fd:
                staged = stage(staging_fd)
                txn = Transaction(tree, staging_fd, backup_fd)
                txn.check(target)
                try:
                    txn.apply(target)  # makes a missing target too, journaled like the rest
                except BaseException:
                    # An undo that failed twice may have left files that were set aside
                    # in the backup folder: they are the only copy, so it is kept.
                    keep_backup = not txn.rollback()
                    if keep_backup:
                        log.error("files.rollback_incomplete", backup=backup)
                    raise
            return staged
        except OSError as exc:
            raise StorageIOError(f"upload failed: {exc.strerror}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not keep_backup:
                shutil.rmtree(backup, ignore_errors=True)

    async def listing(self, record: ContainerRecord, path: ContainerPath) -> list[Entry]:
        return await asyncio.to_thread(self.tree(record).list, path.app_parts)

    async def file(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.file(record.cuid, self.tree(record), path)

    async def zip(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.zip(record.cuid, self.tree(record), path)


class EngineApp:
    """``/app`` as the container's volume on its engine, through the archive endpoint."""

    def __init__(
        self,
        engine: ArchiveEngine | None,
        downloads: Downloads,
        tmp_dir: Path,
        uid: int,
        gid: int,
    ) -> None:
        self._engine = engine
        self._downloads = downloads
        self._tmp = tmp_dir
        self._uid = uid
        self._gid = gid

    async def apply(
        self, record: ContainerRecord, target: tuple[str, ...], stage: Stager
    ) -> Staged:
        if self._engine is None:
            raise EngineError("this service cannot write to another engine's /app")
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        staging = await asyncio.to_thread(tempfile.mkdtemp, dir=self._tmp, prefix="staging-")
        try:
            staged, spool = await asyncio.to_thread(self._stage, staging, target, stage)
            await self._engine.put_archive(record.cuid, APP, spool)
        except OSError as exc:
            raise StorageIOError(f"upload failed: {exc.strerror}") from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        return staged

    def _stage(self, staging: str, target: tuple[str, ...], stage: Stager) -> tuple[Staged, Path]:
        """Unpack into ``staging/files``, then write ``staging/upload.tar`` of it."""
        files = os.path.join(staging, "files")
        os.mkdir(files, 0o700)
        with dir_fd(files) as files_fd:
            staged = stage(files_fd)
        spool = Path(staging) / "upload.tar"
        with tarfile.open(spool, "w", format=tarfile.PAX_FORMAT) as tar:
            for depth in range(1, len(target) + 1):  # the target's folders, made if missing
                tar.addfile(self._info("/".join(target[:depth]), None))
            self._add_tree(tar, files, "/".join(target))
        return staged, spool

    def _add_tree(self, tar: tarfile.TarFile, root: str, prefix: str) -> None:
        """Folders and regular files only (staging holds nothing else; a link is skipped)."""
        for folder, dirs, names in os.walk(root):
            rel = os.path.relpath(folder, root)
            base = "/".join(p for p in (prefix, "" if rel == "." else rel) if p)
            for name in sorted(dirs):
                info = os.lstat(os.path.join(folder, name))
                if stat.S_ISDIR(info.st_mode):
                    tar.addfile(self._info(f"{base}/{name}".lstrip("/"), info))
            for name in sorted(names):
                full = os.path.join(folder, name)
                info = os.lstat(full)
                if not stat.S_ISREG(info.st_mode):
                    continue
                with open(full, "rb") as handle:
                    tar.addfile(self._info(f"{base}/{name}".lstrip("/"), info), handle)

    def _info(self, name: str, st: os.stat_result | None) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        if st is None or stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            info.mode = 0o755 if st is None else stat.S_IMODE(st.st_mode)
        else:
            info.size = st.st_size
            info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = self._uid, self._gid
        info.mtime = int(st.st_mtime) if st is not None else int(time.time())
        return info

    async def listing(self, record: ContainerRecord, path: ContainerPath) -> list[Entry]:
        return await self._downloads.listing(record.cuid, path)

    async def file(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.file(record.cuid, None, path)

    async def zip(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.zip(record.cuid, None, path)
