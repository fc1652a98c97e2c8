"""The engine's images (``/images``): list, read, delete.

Images belong to the engine, not to an account: whoever holds ``images:read`` sees them
all. Each one says how many Dockyard containers (of any owner) name it, by reference or
by id; an image in use is not deleted (409 ``IMAGE_IN_USE``) unless an admin forces it.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.images.ports import ImageEngine, ImageInfo
from dockyard.domain.images.refs import canonical, check_ref, is_image_id
from dockyard.domain.models import ContainerRecord
from dockyard.domain.paging import check_limit
from dockyard.domain.ports import ContainerRepository
from dockyard.domain.recording import Change, NullRecorder, Recorder
from dockyard.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

MAX_PAGE = 500


@dataclass(frozen=True)
class ImageView:
    info: ImageInfo
    containers: int  # Dockyard containers (any owner) that name this image


@dataclass(frozen=True)
class ImagePage:
    items: list[ImageView]
    next_cursor: str | None


def image_not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"image {ref} not found", code="IMAGE_NOT_FOUND", details={"image": ref})


class Usage:
    """Which images the Dockyard containers name: by canonical reference, or by id."""

    def __init__(self, records: Iterable[ContainerRecord]) -> None:
        self.by_ref: Counter[str] = Counter()
        self.by_id: list[str] = []
        for record in records:
            ref = record.spec.image
            name = canonical(ref)
            if name is not None:
                self.by_ref[name] += 1
            if is_image_id(ref):
                self.by_id.append(ref.removeprefix("sha256:"))

    def _id_users(self, info: ImageInfo) -> int:
        full = info.id.removeprefix("sha256:")
        return sum(1 for short in self.by_id if full.startswith(short))

    def count(self, info: ImageInfo) -> int:
        names = {canonical(t) for t in (*info.tags, *info.digests)} - {None}
        return sum(self.by_ref[n] for n in names if n) + self._id_users(info)

    def affected(self, info: ImageInfo, ref: str) -> int:
        """The containers a delete of ``ref`` breaks: removing one tag of an image that
        keeps other names breaks only those that name that tag."""
        name = canonical(ref)
        other_names = [t for t in info.tags if canonical(t) != name]
        if name is not None and other_names:
            return self.by_ref[name]
        return self.count(info)


def _sort_key(info: ImageInfo) -> tuple[float, str]:
    return (-(info.created.timestamp() if info.created else 0.0), info.id)


def _encode(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(f"i:{key[0]!r}:{key[1]}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, stamp, image_id = raw.split(":", 2)
        if kind != "i":
            raise ValueError(raw)
        return float(stamp), image_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "cursor is not one this service handed out",
            code="INVALID_CURSOR",
            details={"field": "cursor", "provided": cursor[:200]},
        ) from None


def _matches(info: ImageInfo, tag: str | None, label: str | None) -> bool:
    if tag and not any(tag in t for t in info.tags):
        return False
    if label:
        key, sep, value = label.partition("=")
        if key not in info.labels or (sep and info.labels[key] != value):
            return False
    return True


class ImageService:
    """``/images``: the engine's images with their use by Dockyard containers."""

    def __init__(
        self,
        engine: ImageEngine,
        containers: ContainerRepository,
        recorder: Recorder | None = None,
    ) -> None:
        self._engine = engine
        self._containers = containers
        self._recorder = recorder or NullRecorder()

    async def _usage(self) -> Usage:
        return Usage(await self._containers.all())

    async def page(
        self,
        principal: Principal,
        *,
        tag: str | None = None,
        label: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ImagePage:
        """Newest first; ``tag`` a substring of a tag, ``label`` ``key`` or ``key=value``."""
        principal.require(Permission.IMAGES_READ)
        check_limit(limit, MAX_PAGE)
        after = _decode(cursor) if cursor else None
        infos = sorted(
            (i for i in await self._engine.list_images() if _matches(i, tag, label)),
            key=_sort_key,
        )
        if after is not None:
            infos = [i for i in infos if _sort_key(i) > after]
        shown = infos[:limit]
        usage = await self._usage()
        more = len(infos) > limit
        return ImagePage(
            [ImageView(i, usage.count(i)) for i in shown],
            _encode(_sort_key(shown[-1])) if more and shown else None,
        )

    async def get(self, principal: Principal, ref: str) -> ImageView:
        principal.require(Permission.IMAGES_READ)
        info = await self._engine.inspect_image(check_ref(ref))
        if info is None:
            raise image_not_found(ref)
        return ImageView(info, (await self._usage()).count(info))

    async def delete(self, principal: Principal, ref: str, *, force: bool = False) -> None:
        """Remove ``ref`` (a tag, or the image by id); 409 while a Dockyard container
        names it; ``force`` (admins) removes it anyway, as far as the engine allows."""
        principal.require(Permission.IMAGES_DELETE)
        if force and not principal.is_admin:
            raise ForbiddenError(
                "only admins force the removal of an image",
                code="FORCE_ADMIN_ONLY",
                details={"field": "force"},
            )
        info = await self._engine.inspect_image(check_ref(ref))
        if info is None:
            raise image_not_found(ref)
        users = (await self._usage()).affected(info, ref)
        if users and not force:
            raise ConflictError(
                f"image {ref} is used by {users} Dockyard container(s)",
                code="IMAGE_IN_USE",
                details={"image": ref, "containers": users},
            )
        await self._engine.remove_image(ref, force=force)
        self._recorder.record(
            Change(
                action="image.deleted",
                resource=ref,
                owner=principal.username,
                actor=principal.username,
                details={"image": ref, "id": info.id, "force": force},
            )
        )
