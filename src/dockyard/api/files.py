"""File routes (SPEC §4): upload-zip, download, download-zip, files, changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.multipart import MultipartFields, boundary_of
from dockyard.api.schemas.files import ChangeList, FileListing, UploadOut
from dockyard.domain.files.service import Download
from dockyard.errors import ValidationError

router = APIRouter(prefix="/containers/{cuid}", tags=["files"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}

ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


@router.post(
    "/upload-zip",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
            "required": True,
        }
    },
)
async def upload_zip(
    cuid: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    path: str | None = None,
) -> UploadOut:
    """Unpack a ZIP into a folder under /app (default /app), all or nothing."""
    # Ownership first: a stranger's upload is refused before its body is read.
    await services.files.check_access(principal, cuid, write=True)
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is not None:
        body = _multipart_file(request.stream(), boundary)
    elif content_type.decode("latin-1") in ZIP_TYPES or not content_type:
        body = request.stream()
    else:
        raise ValidationError(
            "send the ZIP as application/zip or as multipart field 'file'",
            code="UNSUPPORTED_MEDIA_TYPE",
            details={"content_type": content_type.decode("latin-1")[:100]},
        )
    # The caller's upload quota, when smaller than the service's limit (409 past it).
    limit = await services.quotas.upload_limit(
        principal.username, services.files.limits.max_upload_bytes
    )
    with limit.enforced():
        spooled = await services.files.receive(body, limit.bytes)
    return UploadOut.model_validate(await services.files.upload_zip(principal, cuid, path, spooled))


@router.get(
    "/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": _BINARY}}},
)
async def download(
    cuid: str, principal: PrincipalDep, services: ServicesDep, path: str | None = None
) -> StreamingResponse:
    """One file, streamed."""
    return _stream(await services.files.download(principal, cuid, path), "application/octet-stream")


@router.get(
    "/download-zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": _BINARY}}},
)
async def download_zip(
    cuid: str, principal: PrincipalDep, services: ServicesDep, path: str | None = None
) -> StreamingResponse:
    """A folder as a ZIP, streamed as it is built."""
    return _stream(await services.files.download_zip(principal, cuid, path), "application/zip")


@router.get("/files")
async def list_files(
    cuid: str, principal: PrincipalDep, services: ServicesDep, path: str | None = None
) -> FileListing:
    """A folder's listing: name, type, size, mode, mtime."""
    return FileListing.model_validate(await services.files.listing(principal, cuid, path))


@router.get("/changes")
async def changes(cuid: str, principal: PrincipalDep, services: ServicesDep) -> ChangeList:
    """Paths added, changed or deleted versus the image."""
    return ChangeList.model_validate(await services.files.changes(principal, cuid))


@router.get(
    "/changes/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": _BINARY}}},
)
async def changes_archive(
    cuid: str, principal: PrincipalDep, services: ServicesDep
) -> StreamingResponse:
    """The added and changed files as a tar.gz."""
    return _stream(await services.files.changes_archive(principal, cuid), "application/gzip")


def _stream(download: Download, media_type: str) -> StreamingResponse:
    # A blocking iterator: Starlette runs each step in its thread pool.
    headers = {"Content-Disposition": _disposition(download.filename)}
    if download.size is not None:
        headers["Content-Length"] = str(download.size)
    return StreamingResponse(download.chunks, media_type=media_type, headers=headers)


def _disposition(filename: str) -> str:
    ascii_name = (
        "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
        or "download"
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _multipart_file(stream: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[bytes]:
    """The bytes of the multipart field ``file``, as they arrive (never all in memory)."""
    fields = MultipartFields(stream, boundary, file_field=b"file")
    async for chunk in fields.stream():
        yield chunk
    if not fields.file_bytes:
        raise ValidationError(
            "multipart body has no field 'file'",
            code="MISSING_FILE",
            details={"field": "file", "provided": None},
        )
