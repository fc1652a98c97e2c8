"""Files in and out of a container (SPEC §4): ZIP upload, downloads, listings, changes.

Paths under ``/app`` are served from the host folder through ``HostTree`` (descriptor
walks that never follow a link); any other path is read through the Engine API's archive
endpoint, which works on stopped containers too. Uploads are staged beside ``app/`` and
moved in by one ``Transaction``: after any failure ``/app`` is exactly as before.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.provision import BOOT_PY, Provision, file_name
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.files.archives import (
    ArchiveLimits,
    archive_kind,
    inspect,
    inspect_tar,
    open_tar,
    unpack,
    unpack_tar,
)
from dockyard.domain.files.hostfs import Entry, HostTree, Transaction, kind_of
from dockyard.domain.files.paths import ContainerPath, parse, parse_under_app
from dockyard.domain.models import ContainerRecord
from dockyard.domain.ports import ChangeKind, Engine, UrlFetcher
from dockyard.errors import (
    NotFoundError,
    PayloadTooLargeError,
    StorageIOError,
    ValidationError,
)

log = structlog.get_logger("dockyard.files")

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    max_upload_bytes: int = 1024**3
    max_download_zip_bytes: int = 4 * 1024**3
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass(frozen=True)
class Staged:
    """What a staging step left in the staging folder: regular files and their bytes."""

    files: int
    bytes: int


Stager = Callable[[int], Staged]  # given the staging folder's descriptor


@dataclass
class Download:
    """A body to stream: ``chunks`` is a blocking iterator (run it in a thread)."""

    filename: str
    size: int | None
    chunks: Iterator[bytes]


class FileService:
    def __init__(
        self,
        containers: ContainerService,
        engine: Engine,
        tmp_dir: Path,
        uid: int,
        gid: int,
        limits: FileLimits,
        *,
        fetcher: UrlFetcher | None = None,
    ) -> None:
        self._containers = containers
        self._engine = engine
        self._tmp = tmp_dir
        self._uid = uid
        self._gid = gid
        self.limits = limits
        self._fetcher = fetcher

    def _tree(self, record: ContainerRecord) -> HostTree:
        return HostTree(str(self._containers.app_dir(record.cuid)), self._uid, self._gid)

    async def check_access(self, principal: Principal, cuid: str, *, write: bool) -> None:
        await self._record(
            principal, cuid, Permission.FILES_WRITE if write else Permission.FILES_READ
        )

    async def _record(
        self, principal: Principal, cuid: str, permission: Permission
    ) -> ContainerRecord:
        principal.require(permission)
        return await self._containers.owned(principal, cuid)

    # -- upload ----------------------------------------------------------------

    async def receive(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> Path:
        """Spool a request body to a private temporary file, within the size limit."""
        limit = limit or self.limits.max_upload_bytes
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="upload-", suffix=".zip")
        path = Path(name)
        received = 0
        buffer = bytearray()
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > limit:
                        raise PayloadTooLargeError(
                            f"upload is larger than {limit} bytes",
                            code="UPLOAD_TOO_LARGE",
                            details={"limit": limit},
                        )
                    buffer += chunk
                    if len(buffer) >= CHUNK:
                        await asyncio.to_thread(handle.write, bytes(buffer))
                        buffer.clear()
                if buffer:
                    await asyncio.to_thread(handle.write, bytes(buffer))
        except BaseException:
            _discard(path)
            raise
        return path

    async def upload_zip(
        self, principal: Principal, cuid: str, raw_path: str | None, archive_path: Path
    ) -> dict[str, int]:
        """Unpack a spooled ZIP into a folder under /app, all or nothing."""
        try:
            record = await self._record(principal, cuid, Permission.FILES_WRITE)
            target = parse_under_app(raw_path)
            project = self._containers.project_dir(record.cuid)
            async with self._containers.locked(record.cuid):
                result = await asyncio.to_thread(
                    self._unpack_and_apply,
                    archive_path,
                    project,
                    self._tree(record),
                    target.app_parts,
                )
        finally:
            await asyncio.to_thread(archive_path.unlink, True)
        log.info("files.uploaded", cuid=cuid, files=result["files"], bytes=result["bytes"])
        return result

    def _unpack_and_apply(
        self, archive_path: Path, project: Path, tree: HostTree, target: tuple[str, ...]
    ) -> dict[str, int]:
        stage = partial(self._stage_zip, archive_path, source="the body")
        return self._apply_staged(project, tree, target, stage)

    def _apply_staged(
        self, project: Path, tree: HostTree, target: tuple[str, ...], stage: Stager
    ) -> dict[str, int]:
        """Stage into a private folder beside ``app/``, then move it all in, or nothing."""
        staging = tempfile.mkdtemp(dir=project, prefix=".staging-")
        backup = tempfile.mkdtemp(dir=project, prefix=".backup-")
        staging_fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        backup_fd = os.open(backup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            staged = stage(staging_fd)
            txn = Transaction(tree, staging_fd, backup_fd)
            txn.check(target)
            try:
                txn.apply(target)  # makes a missing target too, journaled like the rest
            except BaseException:
                txn.rollback()
                raise
            return {"files": staged.files, "bytes": staged.bytes}
        except OSError as exc:
            raise StorageIOError(f"upload failed: {exc.strerror}") from exc
        finally:
            os.close(staging_fd)
            os.close(backup_fd)
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(backup, ignore_errors=True)

    def _stage_zip(self, archive_path: Path, staging_fd: int, source: str) -> Staged:
        try:
            archive = zipfile.ZipFile(archive_path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValidationError(
                f"{source} is not a valid ZIP archive",
                code="INVALID_ZIP",
                details={"reason": str(exc)[:200]},
            ) from None
        limits = self.limits.archive
        with archive:
            plan = inspect(archive, limits)
            try:
                written = unpack(archive, plan, staging_fd, self._uid, self._gid, limits)
            except OSError as exc:
                raise StorageIOError(f"cannot unpack: {exc.strerror}") from exc
        return Staged(len(plan.files), written)

    def _stage_tar(self, archive_path: Path, staging_fd: int) -> Staged:
        limits = self.limits.archive
        with open_tar(archive_path, limits) as tar:
            plan = inspect_tar(tar, limits)
            try:
                written = unpack_tar(tar, plan, staging_fd, self._uid, self._gid, limits)
            except OSError as exc:
                raise StorageIOError(f"cannot unpack: {exc.strerror}") from exc
        return Staged(len(plan.files), written)

    def _stage_file(self, source: Path, name: str, staging_fd: int) -> Staged:
        os.rename(source, name, dst_dir_fd=staging_fd)
        os.chown(name, self._uid, self._gid, dir_fd=staging_fd, follow_symlinks=False)
        os.chmod(name, 0o644, dir_fd=staging_fd)
        size = os.stat(name, dir_fd=staging_fd, follow_symlinks=False).st_size
        return Staged(1, size)

    # -- provisioning (create's script, script_url, data_url) ------------------

    async def provision(self, record: ContainerRecord, wanted: Provision) -> None:
        """Fill a new container's /app before it first starts: the data first (unpacked
        when it is a ZIP or tar), then boot.py, so an explicit script wins over one in
        the data. Runs under the create's lock, in the create's clean-up on failure."""
        project = self._containers.project_dir(record.cuid)
        tree = self._tree(record)
        steps: list[tuple[str, Path, tuple[str, ...], str | None]] = []
        try:
            if wanted.data_url is not None:
                spool = await self._fetch(wanted.data_url, project, "data_url")
                steps.append(("data_url", spool, wanted.data_path.app_parts, wanted.data_url))
            if wanted.script_url is not None:
                spool = await self._fetch(wanted.script_url, project, "script_url")
                steps.append(("script_url", spool, (), None))
            elif wanted.script is not None:
                spool = await asyncio.to_thread(_spool_bytes, project, wanted.script)
                steps.append(("script", spool, (), None))
            for field_name, spool, target, url in steps:
                result = await asyncio.to_thread(self._place, spool, url, project, tree, target)
                log.info("files.provisioned", cuid=record.cuid, field=field_name, **result)
        finally:
            for _field, spool, _target, _url in steps:
                await asyncio.to_thread(spool.unlink, True)

    async def _fetch(self, url: str, project: Path, field_name: str) -> Path:
        if self._fetcher is None:
            raise ValidationError(
                "this service does not fetch URLs",
                code="URL_NOT_ALLOWED",
                details={"field": field_name},
            )
        spool = await asyncio.to_thread(_spool_bytes, project, b"")
        try:
            await self._fetcher.fetch(url, spool, field=field_name)
        except BaseException:
            await asyncio.to_thread(spool.unlink, True)
            raise
        return spool

    def _place(
        self,
        spool: Path,
        url: str | None,
        project: Path,
        tree: HostTree,
        target: tuple[str, ...],
    ) -> dict[str, int]:
        """A fetched data file is unpacked if it is an archive, else kept under the URL's
        last path segment; a script (``url`` None) becomes boot.py."""
        stage: Stager
        kind = archive_kind(spool) if url is not None else None
        if kind == "zip":
            stage = partial(self._stage_zip, spool, source="data_url")
        elif kind == "tar":
            stage = partial(self._stage_tar, spool)
        else:
            stage = partial(self._stage_file, spool, file_name(url) if url else BOOT_PY)
        return self._apply_staged(project, tree, target, stage)

    # -- reads -----------------------------------------------------------------

    async def listing(
        self, principal: Principal, cuid: str, raw_path: str | None
    ) -> dict[str, Any]:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        path = parse(raw_path)
        if path.in_app:
            entries = await asyncio.to_thread(self._tree(record).list, path.app_parts)
        else:
            entries = await self._engine_listing(record, path)
        return {"path": path.text, "entries": [_entry(e) for e in entries]}

    async def download(self, principal: Principal, cuid: str, raw_path: str | None) -> Download:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        if raw_path is None or raw_path == "":
            raise ValidationError(
                "path is required", code="MISSING_PATH", details={"field": "path", "provided": None}
            )
        path = parse(raw_path)
        if path.in_app:
            fd = await asyncio.to_thread(self._tree(record).open_regular, path.app_parts)
            size = os.fstat(fd).st_size
            return Download(path.name, size, _read_fd(fd))
        spool = await self._spool_archive(record, path)
        try:
            member, size = await asyncio.to_thread(_single_member, spool)
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        return Download(path.name, size, _read_tar_member(spool, member))

    async def download_zip(self, principal: Principal, cuid: str, raw_path: str | None) -> Download:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        path = parse(raw_path)
        name = f"{path.name}.zip"
        if path.in_app:
            tree = self._tree(record)
            total = await asyncio.to_thread(tree.size, path.app_parts)
            self._check_zip_size(total)
            members = _host_members(tree, path.app_parts, small=total < _ZIP32_BYTES)
            return Download(name, None, _zip_chunks(members))
        spool = await self._spool_archive(record, path)
        return Download(name, None, _zip_chunks(_tar_members(spool)))

    def _check_zip_size(self, total: int) -> None:
        if total > self.limits.max_download_zip_bytes:
            raise PayloadTooLargeError(
                f"the folder holds {total} bytes; download-zip is limited to "
                f"{self.limits.max_download_zip_bytes}",
                code="DOWNLOAD_TOO_LARGE",
                details={"bytes": total, "limit": self.limits.max_download_zip_bytes},
            )

    async def _spool_archive(self, record: ContainerRecord, path: ContainerPath) -> Path:
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="archive-", suffix=".tar")
        os.close(fd)
        spool = Path(name)
        try:
            await self._engine.archive_to(
                record.cuid, path.text, spool, self.limits.max_download_zip_bytes
            )
        except BaseException:
            _discard(spool)
            raise
        return spool

    async def _engine_listing(self, record: ContainerRecord, path: ContainerPath) -> list[Entry]:
        spool = await self._spool_archive(record, path)
        try:
            return await asyncio.to_thread(_tar_listing, spool)
        finally:
            spool.unlink(missing_ok=True)

    # -- changes ---------------------------------------------------------------

    async def changes(self, principal: Principal, cuid: str) -> dict[str, Any]:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        changes = await self._engine.changes(record.cuid)
        return {"changes": [{"path": c.path, "kind": c.kind.value} for c in changes]}

    async def changes_archive(self, principal: Principal, cuid: str) -> Download:
        """Added and changed files (not folders) versus the image, as one tar.gz."""
        record = await self._record(principal, cuid, Permission.FILES_READ)
        changes = await self._engine.changes(record.cuid)
        added_dirs: list[str] = []
        spools: list[Path] = []
        try:
            for change in sorted(changes, key=lambda c: c.path):
                where = change.path
                if change.kind is ChangeKind.DELETED or any(
                    where.startswith(d + "/") for d in added_dirs
                ):
                    continue
                info = await self._engine.archive_stat(record.cuid, where)
                if info is None:
                    continue
                if info.is_dir and change.kind is ChangeKind.CHANGED:
                    continue  # a folder whose contents changed: its files are listed too
                if info.is_dir:
                    added_dirs.append(where)
                spools.append(await self._spool_archive(record, parse(where)))
        except BaseException:
            for spool in spools:
                spool.unlink(missing_ok=True)
            raise
        return Download(f"{record.cuid}-changes.tar.gz", None, _merged_targz(spools))


def _entry(e: Entry) -> dict[str, Any]:
    return {
        "name": e.name,
        "type": e.type,
        "size": e.size,
        "mode": oct(e.mode),
        "mtime": datetime.fromtimestamp(e.mtime, UTC).isoformat(),
    }


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _spool_bytes(project: Path, data: bytes) -> Path:
    """A private file in the container's project folder (same file system as app/)."""
    fd, name = tempfile.mkstemp(dir=project, prefix=".fetch-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return Path(name)


def _read_handle(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def _read_fd(fd: int) -> Iterator[bytes]:
    try:
        while chunk := os.read(fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)


Member = tuple[str, datetime, int, Any, Iterator[bytes]]


# Below this, every offset fits 32 bits: plain ZIP entries, which stream_zip writes
# about twice as fast as its ZIP_AUTO ones (it matters for many small files).
_ZIP32_BYTES = 3 * 1024**3


def _host_members(tree: HostTree, parts: tuple[str, ...], *, small: bool) -> Iterator[Member]:
    from stream_zip import ZIP_32, ZIP_AUTO

    for count, (rel, st, fd) in enumerate(tree.walk_files(parts)):
        if small and count < 65_000:  # ZIP_32's central directory holds 65,535 entries
            method: Any = ZIP_32
            chunks: Iterator[bytes] = _read_small(fd) if st.st_size <= CHUNK else _read_fd(fd)
        else:
            method = ZIP_AUTO(st.st_size, level=6)
            chunks = _read_fd(fd)
        yield (
            "/".join(rel),
            datetime.fromtimestamp(st.st_mtime, UTC),
            stat.S_IMODE(st.st_mode) | stat.S_IFREG,
            method,
            chunks,
        )


def _read_small(fd: int) -> Iterator[bytes]:
    try:
        data = os.read(fd, CHUNK)
    finally:
        os.close(fd)
    yield data


def _tar_members(spool: Path) -> Iterator[Member]:
    from stream_zip import ZIP_AUTO

    try:
        with tarfile.open(spool, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                name = member.name.split("/", 1)[1] if "/" in member.name else member.name
                yield (
                    name,
                    datetime.fromtimestamp(member.mtime, UTC),
                    (member.mode & 0o777) | stat.S_IFREG,
                    ZIP_AUTO(member.size, level=6),
                    _read_handle(handle),
                )
    finally:
        spool.unlink(missing_ok=True)


def _zip_chunks(members: Iterator[Member]) -> Iterator[bytes]:
    from stream_zip import stream_zip

    yield from _coalesced(
        stream_zip(
            members,
            extended_timestamps=False,
            get_compressobj=lambda: zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS),
        )
    )


def _coalesced(chunks: Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Pieces of about ``size`` bytes: each one the server sends costs a hop to a thread,
    and a ZIP of many small files comes out of stream_zip in many tiny pieces."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


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
