"""Build and pull routes (SPEC §6): ``/builds`` and ``POST /images/pull``.

``POST /builds`` takes its request three ways: JSON (a Dockerfile text, ``tar_url``,
``git`` or ``github_*``); ``multipart/form-data`` with the context archive as ``TarFile``
and the manifest as ``Json`` (seed 002; a ``dockerfile`` text in the manifest makes the
archive its extra files); or the archive itself as the body (``application/x-tar``,
``application/gzip``, ``application/zip``) with the options in the query. Uploads are
spooled to disk within ``BUILD_CONTEXT_MAX_BYTES`` (413), never held in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError as PydanticValidationError
from python_multipart.multipart import parse_options_header

from dockyard.api.bodies import is_json
from dockyard.api.deps import PageParams, PrincipalDep, Services, ServicesDep, paged
from dockyard.api.idempotency import IDEMPOTENT, claim
from dockyard.api.multipart import MultipartFields, boundary_of
from dockyard.api.schemas.builds import BuildIn, JobAccepted, JobOut, JobPage, PullIn
from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.files.downloads import discard
from dockyard.domain.images.jobreads import MAX_PAGE
from dockyard.domain.images.models import JobKind, JobStatus
from dockyard.domain.observe.streams import LeasedStream
from dockyard.errors import UnsupportedMediaTypeError, ValidationError, invalid_input

router = APIRouter(tags=["builds"])

ARCHIVE_TYPES = frozenset(
    {
        "application/x-tar",
        "application/tar",
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip-compressed",
        "application/octet-stream",
    }
)
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BUILD_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BuildIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "TarFile": {"type": "string", "format": "binary"},
                        "Json": {"$ref": "#/components/schemas/BuildIn"},
                    },
                },
                "encoding": {
                    "TarFile": {"contentType": "application/x-tar, application/gzip"},
                    "Json": {"contentType": "application/json"},
                },
            },
            "application/x-tar": _BINARY,
            "application/gzip": _BINARY,
            "application/zip": _BINARY,
        },
        "required": True,
    }
}


@router.post("/builds", status_code=202, openapi_extra=_BUILD_BODY)
async def create_build(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    tags: str | None = Query(default=None, description="archive body: comma list of tags"),
    dockerfile_path: str | None = Query(default=None, description="archive body"),
    target: str | None = Query(default=None, description="archive body"),
    no_cache: bool = Query(default=False, description="archive body"),
    pull: bool = Query(default=False, description="archive body"),
    push: bool = Query(default=False, description="archive body"),
    registry: str | None = Query(default=None, description="archive body: a registry id"),
    build_args: str | None = Query(default=None, description="archive body: a JSON object"),
    labels: str | None = Query(default=None, description="archive body: a JSON object"),
) -> JobAccepted:
    """Queue a build (202 with the job; watch it at /builds/{job_id})."""
    principal.require(Permission.IMAGES_BUILD)
    content_type = request.headers.get("content-type", "")
    boundary = boundary_of(content_type)
    mime = parse_options_header(content_type)[0].decode("latin-1").lower()
    if boundary is None and (not content_type or is_json(content_type)):
        body = await request.body()
        await claim(request, principal, services, body)
        manifest = _manifest(body or b"{}")
        return await _submit(principal, services, manifest, None)
    services.jobs.check_room(principal.username)  # before an upload is read
    if boundary is None and mime not in ARCHIVE_TYPES:
        raise UnsupportedMediaTypeError(
            "send JSON, multipart/form-data (TarFile + Json), or a tar, gzip or zip archive",
            details={"content_type": content_type[:100]},
        )
    query = {
        "tags": tags.split(",") if tags else None,
        "dockerfile_path": dockerfile_path,
        "target": target,
        "no_cache": no_cache,
        "pull": pull,
        "push": push,
        "registry": registry,
        "build_args": _json_query(build_args, "build_args"),
        "labels": _json_query(labels, "labels"),
    }
    upload, raw, digest = await _receive(request, services, boundary, query)
    try:
        await claim(request, principal, services, digest.encode())
        return await _submit(principal, services, _manifest(raw), upload)
    finally:
        if upload is not None:
            discard(upload)  # prepared into the job's own folder by now


async def _receive(
    request: Request, services: Services, boundary: bytes | None, query: dict[str, Any]
) -> tuple[Path | None, bytes, str]:
    """The upload spooled to disk (None: a multipart body without ``TarFile``), the
    manifest, and a digest of both (what an Idempotency-Key is held to)."""
    digest = hashlib.sha256()
    if boundary is None:
        upload = await _spool(services, _hashed(request.stream(), digest))
        raw = json.dumps({k: v for k, v in query.items() if v not in (None, False)}).encode()
        digest.update(raw)
        return upload, raw, digest.hexdigest()
    fields = MultipartFields(
        request.stream(),
        boundary,
        file_field=b"TarFile",
        keep=frozenset({b"Json"}),
        keep_max=request.app.state.settings.json_body_max_bytes,
    )
    spooled = await _spool(services, _hashed(fields.stream(), digest))
    raw = bytes(fields.small.get(b"Json", b"{}"))
    digest.update(raw)
    if not fields.file_bytes:
        discard(spooled)
        return None, raw, digest.hexdigest()
    return spooled, raw, digest.hexdigest()


async def _submit(
    principal: Principal, services: Services, manifest: BuildIn, upload: Path | None
) -> JobAccepted:
    job = await services.builds.submit(principal, manifest.to_request(upload))
    return JobAccepted.accepted(job)


def _manifest(raw: bytes) -> BuildIn:
    try:
        return BuildIn.model_validate_json(raw)
    except PydanticValidationError as exc:
        raise invalid_input(exc.errors()) from None


def _json_query(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ValidationError(
            f"{name} is a JSON object", code="INVALID_FIELD", details={"field": name}
        ) from None


async def _hashed(chunks: AsyncIterator[bytes], digest: Any) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


async def _spool(services: Services, chunks: AsyncIterator[bytes]) -> Path:
    limit: int = services.builds.context_max_bytes
    return await services.files.receive(chunks, limit)


@router.get("/builds")
async def list_builds(
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=50, maximum=MAX_PAGE)],
    status: str | None = Query(default=None, description="comma list, e.g. queued,building"),
    kind: str | None = Query(default=None, description="build or pull"),
) -> JobPage:
    """Builds and pulls, newest first: one's own (admins: everyone's)."""
    page = await services.jobs.page(
        principal,
        statuses=_parse(status, JobStatus, "status"),
        kinds=_parse(kind, JobKind, "kind"),
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return JobPage(builds=[JobOut.from_job(j) for j in page.items], next_cursor=page.next_cursor)


def _parse(raw: str | None, enum: Any, field: str) -> tuple[Any, ...]:
    out = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        try:
            out.append(enum(part.strip()))
        except ValueError:
            raise ValidationError(
                f"unknown {field} {part.strip()[:32]!r}",
                code="INVALID_FIELD",
                details={"field": field, "allowed": [e.value for e in enum]},
            ) from None
    return tuple(dict.fromkeys(out))


@router.get("/builds/{job_id}")
async def get_build(job_id: str, principal: PrincipalDep, services: ServicesDep) -> JobOut:
    """One job: status, step, progress, error, image id and digest."""
    return JobOut.from_job(await services.jobs.get(principal, job_id))


@router.get(
    "/builds/{job_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def build_logs(
    job_id: str, principal: PrincipalDep, services: ServicesDep, follow: bool = False
) -> StreamingResponse:
    """The job's log from its first line; follow=true streams it until the job ends."""
    stream = await services.jobs.open_log(principal, job_id, follow=follow)
    return StreamingResponse(
        _closing(stream), media_type="text/plain; charset=utf-8", headers=_STREAM_HEADERS
    )


async def _closing(stream: LeasedStream[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


@router.post("/builds/{job_id}/cancel")
async def cancel_build(job_id: str, principal: PrincipalDep, services: ServicesDep) -> JobOut:
    """Cancel a queued or running job; it has ended when this answers."""
    return JobOut.from_job(await services.jobs.cancel(principal, job_id))


@router.post("/images/pull", status_code=202, dependencies=[IDEMPOTENT], tags=["images"])
async def pull_image(body: PullIn, principal: PrincipalDep, services: ServicesDep) -> JobAccepted:
    """Pull an image as a job (202; progress per layer at /builds/{job_id})."""
    job = await services.pulls.submit(
        principal,
        body.image,
        registry=body.registry,
        auth=body.auth.value() if body.auth is not None else None,
    )
    return JobAccepted.accepted(job)
