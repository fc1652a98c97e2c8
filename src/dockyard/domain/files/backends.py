"""Where a container's ``/app`` lives: one Protocol, two places (issue 12).

``HostApp``: on the local engine, ``/app`` is a folder of this host (``app/`` of the
project): the upload is checked and unpacked into a private staging folder beside it,
then moved in by the journaled ``hostfs.Transaction`` (all or nothing), and read through
``HostTree``. ``EngineApp``: on another engine, ``/app`` is the container's named volume
there; nothing of it is on this host. The upload is checked whole first under the same
rules (uploads.py: no links, no paths out, the entry, size and ratio limits, every ZIP
entry's data and CRC), then its entries are streamed, in one pass, as the tar body of
the engine's archive PUT (it works on created and stopped containers too), owned by the
containers' user.

Atomicity on an engine: everything that can refuse an upload is decided before a byte
goes to the engine, so a refused upload changes nothing there; the engine's extraction
itself is one request but not a transaction - if the engine or the connection dies in
the middle (or a spooled file changed under us), part of the files may be there (the
503 says so; the same upload again completes it). The engine resolves every path inside
the container's own file system, so nothing outside the container can be reached.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import structlog

from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.routing import ArchiveEngine
from dockyard.domain.files.downloads import Download, Downloads
from dockyard.domain.files.hostfs import Entry, HostTree, Transaction
from dockyard.domain.files.paths import ContainerPath
from dockyard.domain.files.uploads import Staged, Upload, tar_chunks
from dockyard.domain.models import ContainerRecord
from dockyard.errors import EngineError, StorageIOError

log = structlog.get_logger("dockyard.files")

APP = "/app"


Stager = Callable[[int], Staged]  # given the staging folder's descriptor


class AppFiles(Protocol):
    """A container's ``/app``: staged uploads in, listings and downloads out."""

    async def apply(
        self, record: ContainerRecord, target: tuple[str, ...], upload: Upload
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
        self, record: ContainerRecord, target: tuple[str, ...], upload: Upload
    ) -> Staged:
        project = self._containers.project_dir(record.cuid)
        tree = self.tree(record)
        return await asyncio.to_thread(self._apply, project, tree, target, upload.stage)

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


class TarBody:
    """A blocking iterator of chunks as a request body: each next chunk is read in a
    thread while the one before is sent. A failure of ours (a file that changed under
    us) is kept, so that it, not the broken request, is what the caller sees."""

    def __init__(self, chunks: Generator[bytes, None, None]) -> None:
        self._chunks = chunks
        self._next: asyncio.Future[bytes | None] | None = None
        self._failure: Exception | None = None

    def _read(self) -> bytes | None:
        return next(self._chunks, None)

    def _ahead(self) -> asyncio.Future[bytes | None]:
        self._next = asyncio.ensure_future(asyncio.to_thread(self._read))
        return self._next

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            pending = self._ahead()
            while (chunk := await pending) is not None:
                pending = self._ahead()
                yield chunk
        except Exception as exc:
            self._failure = exc
            raise

    def raise_own(self, exc: BaseException) -> None:
        if self._failure is not None and self._failure is not exc:
            raise self._failure from exc

    async def close(self) -> None:
        """Wait for a read still under way (never two threads in the generator), then
        close the generator (and the entry it was reading)."""
        if self._next is not None and not self._next.done():
            await asyncio.wait([self._next])
        await asyncio.to_thread(self._chunks.close)


class EngineApp:
    """``/app`` as the container's volume on its engine, through the archive endpoint."""

    def __init__(
        self,
        engine: ArchiveEngine | None,
        downloads: Downloads,
        uid: int,
        gid: int,
    ) -> None:
        self._engine = engine
        self._downloads = downloads
        self._uid = uid
        self._gid = gid

    async def apply(
        self, record: ContainerRecord, target: tuple[str, ...], upload: Upload
    ) -> Staged:
        """Check the whole upload, then stream its entries as the PUT's tar body."""
        if self._engine is None:
            raise EngineError("this service cannot write to another engine's /app")
        opened = upload.checked()
        try:
            checked = await asyncio.to_thread(opened.__enter__)
        except OSError as exc:
            raise StorageIOError(f"upload failed: {exc.strerror}") from exc
        body = TarBody(tar_chunks(checked, target, self._uid, self._gid))
        try:
            await self._engine.put_archive(record.cuid, APP, body.stream())
        except BaseException as exc:
            body.raise_own(exc)
            raise
        finally:
            await body.close()
            await asyncio.to_thread(opened.__exit__, None, None, None)
        return checked.staged

    async def listing(self, record: ContainerRecord, path: ContainerPath) -> list[Entry]:
        return await self._downloads.listing(record.cuid, path)

    async def file(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.file(record.cuid, None, path)

    async def zip(self, record: ContainerRecord, path: ContainerPath) -> Download:
        return await self._downloads.zip(record.cuid, None, path)
