"""Files in and out of a container (SPEC §4): ZIP upload, provisioning, listings, and
the checks in front of downloads and changes (whose bodies ``downloads.py`` makes).

``/app`` is where the container's engine keeps it (backends.py, one ``AppFiles`` per
place): on the local engine the host folder (``HostTree``'s descriptor walks that never
follow a link; uploads staged beside ``app/`` and moved in by one ``Transaction``, so
after any failure ``/app`` is exactly as before), on another engine its volume there,
through the Engine API's archive endpoint. Any other path is read through that endpoint,
which works on stopped containers too.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.containers.provision import BOOT_PY, Provision, file_name
from dockyard.domain.containers.reads import on_volume
from dockyard.domain.containers.service import ContainerService
from dockyard.domain.engines.routing import ArchiveEngine
from dockyard.domain.files.archives import ArchiveLimits
from dockyard.domain.files.backends import AppFiles, EngineApp, HostApp
from dockyard.domain.files.downloads import CHUNK, Download, Downloads, discard
from dockyard.domain.files.hostfs import Entry
from dockyard.domain.files.paths import parse, parse_under_app
from dockyard.domain.files.tars import archive_kind
from dockyard.domain.files.uploads import FileUpload, TarUpload, Upload, ZipUpload
from dockyard.domain.models import ContainerRecord
from dockyard.domain.ports import Engine, UrlFetcher
from dockyard.errors import PayloadTooLargeError, ValidationError

__all__ = ["Download", "FileLimits", "FileService"]

log = structlog.get_logger("dockyard.files")


@dataclass(frozen=True)
class FileLimits:
    max_upload_bytes: int = 1024**3
    max_download_zip_bytes: int = 4 * 1024**3
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


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
        archives: ArchiveEngine | None = None,
    ) -> None:
        """``archives``: writes into another engine's ``/app`` volume (backends.py)."""
        self._containers = containers
        self._engine = engine
        self._tmp = tmp_dir
        self._uid = uid
        self._gid = gid
        self.limits = limits
        self._fetcher = fetcher
        self._downloads = Downloads(engine, tmp_dir, lambda: self.limits.max_download_zip_bytes)
        self._host = HostApp(containers, self._downloads, uid, gid)
        self._volume = EngineApp(archives, self._downloads, uid, gid)

    def _app(self, record: ContainerRecord) -> AppFiles:
        """Where this container's /app is: a host folder, or a volume on its engine."""
        return self._volume if on_volume(record) else self._host

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
            discard(path)
            raise
        return path

    async def upload_zip(
        self, principal: Principal, cuid: str, raw_path: str | None, archive_path: Path
    ) -> dict[str, int]:
        """Unpack a spooled ZIP into a folder under /app, all or nothing."""
        try:
            record = await self._record(principal, cuid, Permission.FILES_WRITE)
            self._containers.activity.touch(record.cuid)  # an upload is activity
            target = parse_under_app(raw_path)
            upload = ZipUpload(archive_path, self.limits.archive, self._uid, self._gid)
            async with self._containers.locked(record.cuid):
                staged = await self._app(record).apply(record, target.app_parts, upload)
        finally:
            await asyncio.to_thread(archive_path.unlink, True)
        result = {"files": staged.files, "bytes": staged.bytes}
        log.info("files.uploaded", cuid=cuid, **result)
        return result

    # -- provisioning (create's script, script_url, data_url) ------------------

    async def provision(self, record: ContainerRecord, wanted: Provision) -> None:
        """Fill a new container's /app before it first starts: the data first (unpacked
        when it is a ZIP or tar), then boot.py, so an explicit script wins over one in
        the data. Runs under the create's lock, in the create's clean-up on failure."""
        project = self._containers.project_dir(record.cuid)
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
                upload = await asyncio.to_thread(self._upload_of, spool, url)
                staged = await self._app(record).apply(record, target, upload)
                log.info(
                    "files.provisioned",
                    cuid=record.cuid,
                    field=field_name,
                    files=staged.files,
                    bytes=staged.bytes,
                )
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

    def _upload_of(self, spool: Path, url: str | None) -> Upload:
        """A fetched data file is unpacked if it is an archive, else kept under the URL's
        last path segment; a script (``url`` None) becomes boot.py."""
        kind = archive_kind(spool) if url is not None else None
        limits, uid, gid = self.limits.archive, self._uid, self._gid
        if kind == "zip":
            return ZipUpload(spool, limits, uid, gid, source="data_url")
        if kind == "tar":
            return TarUpload(spool, limits, uid, gid)
        return FileUpload(spool, file_name(url) if url else BOOT_PY, uid, gid)

    # -- reads (downloads.py) -------------------------------------------------

    async def listing(
        self, principal: Principal, cuid: str, raw_path: str | None
    ) -> dict[str, Any]:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        path = parse(raw_path)
        if path.in_app:
            entries = await self._app(record).listing(record, path)
        else:
            entries = await self._downloads.listing(record.cuid, path)
        return {"path": path.text, "entries": [_entry(e) for e in entries]}

    async def download(self, principal: Principal, cuid: str, raw_path: str | None) -> Download:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        if raw_path is None or raw_path == "":
            raise ValidationError(
                "path is required", code="MISSING_PATH", details={"field": "path", "provided": None}
            )
        self._containers.activity.touch(record.cuid)  # a download is activity
        path = parse(raw_path)
        if path.in_app:
            return await self._app(record).file(record, path)
        return await self._downloads.file(record.cuid, None, path)

    async def download_zip(self, principal: Principal, cuid: str, raw_path: str | None) -> Download:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        self._containers.activity.touch(record.cuid)
        path = parse(raw_path)
        if path.in_app:
            return await self._app(record).zip(record, path)
        return await self._downloads.zip(record.cuid, None, path)

    async def changes(self, principal: Principal, cuid: str) -> dict[str, Any]:
        record = await self._record(principal, cuid, Permission.FILES_READ)
        changes = await self._engine.changes(record.cuid)
        return {"changes": [{"path": c.path, "kind": c.kind.value} for c in changes]}

    async def changes_archive(self, principal: Principal, cuid: str) -> Download:
        """Added and changed files (not folders) versus the image, as one tar.gz."""
        record = await self._record(principal, cuid, Permission.FILES_READ)
        return await self._downloads.changes(record.cuid)


def _entry(e: Entry) -> dict[str, Any]:
    return {
        "name": e.name,
        "type": e.type,
        "size": e.size,
        "mode": oct(e.mode),
        "mtime": datetime.fromtimestamp(e.mtime, UTC).isoformat(),
    }


def _spool_bytes(project: Path, data: bytes) -> Path:
    """A private file in the container's project folder (same file system as app/)."""
    fd, name = tempfile.mkstemp(dir=project, prefix=".fetch-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return Path(name)
