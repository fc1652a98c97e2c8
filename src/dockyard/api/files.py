"""File routes (SPEC §4): upload-zip, download, download-zip, files, changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from dockyard.api.deps import PrincipalDep, ServicesDep
from dockyard.api.schemas.files import ChangeList, FileListing, UploadOut
from dockyard.domain.files.service import Download
from dockyard.errors import ValidationError

MAX_BOUNDARY = 70  # RFC 2046; a longer one is refused before parsing

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
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary or len(boundary) > MAX_BOUNDARY:
            raise ValidationError(
                f"a multipart boundary has 1 to {MAX_BOUNDARY} characters (RFC 2046)",
                code="INVALID_MULTIPART",
            )
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
    state: dict[str, Any] = {"field": b"", "value": b"", "name": None, "out": [], "seen": False}

    def on_part_begin() -> None:
        state["name"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["field"].lower() == b"content-disposition":
            _, opts = parse_options_header(state["value"])
            state["name"] = opts.get(b"name")
        state["field"], state["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == b"file":
            state["seen"] = True
            state["out"].append(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        async for chunk in stream:
            parser.write(chunk)
            if state["out"]:
                out, state["out"] = state["out"], []
                yield b"".join(out)
        parser.finalize()
    except MultipartParseError as exc:  # a client's malformed body: 400, not a 500
        raise ValidationError(
            "malformed multipart body", code="INVALID_MULTIPART", details={"reason": str(exc)}
        ) from None
    if state["out"]:
        yield b"".join(state["out"])
    if not state["seen"]:
        raise ValidationError(
            "multipart body has no field 'file'",
            code="MISSING_FILE",
            details={"field": "file", "provided": None},
        )
