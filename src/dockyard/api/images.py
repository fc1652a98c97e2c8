"""``/images``: the engine's images (SPEC §6); pulls and builds live in api/builds.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from dockyard.api.deps import PageParams, PrincipalDep, ServicesDep, paged
from dockyard.api.schemas.images import ImageOut, ImagePageOut
from dockyard.domain.images.images import MAX_PAGE

router = APIRouter(prefix="/images", tags=["images"])


@router.get("")
async def list_images(
    principal: PrincipalDep,
    services: ServicesDep,
    paging: Annotated[PageParams, paged(default=100, maximum=MAX_PAGE)],
    tag: str | None = Query(default=None, max_length=256, description="a part of a tag"),
    label: str | None = Query(default=None, max_length=512, description="key or key=value"),
) -> ImagePageOut:
    """The engine's images, newest first, with how many Dockyard containers use each."""
    page = await services.images.page(
        principal, tag=tag, label=label, limit=paging.limit, cursor=paging.cursor
    )
    return ImagePageOut(
        images=[ImageOut.from_view(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{ref:path}")
async def get_image(ref: str, principal: PrincipalDep, services: ServicesDep) -> ImageOut:
    """One image, by reference (repo:tag, repo@digest) or id."""
    return ImageOut.from_view(await services.images.get(principal, ref))


@router.delete("/{ref:path}", status_code=204)
async def delete_image(
    ref: str,
    principal: PrincipalDep,
    services: ServicesDep,
    force: bool = Query(default=False, description="remove even if in use (admins only)"),
) -> Response:
    """Remove an image (a tag, or the image by id); 409 while a container uses it."""
    await services.images.delete(principal, ref, force=force)
    return Response(status_code=204)
