"""Image bodies (SPEC §6): the image object and its list."""

from __future__ import annotations

from pydantic import Field

from dockyard.api.schemas.common import Instant, NextCursor, Out, iso_or_none
from dockyard.domain.images.images import ImageView


class ImageOut(Out):
    id: str = Field(description="sha256:…")
    tags: list[str]
    digests: list[str] = Field(description="repository@sha256:… of the registries it came from")
    size: int = Field(description="bytes")
    created: Instant | None
    exposed_ports: list[str] = Field(description="e.g. 80/tcp")
    architecture: str
    labels: dict[str, str]
    containers: int = Field(description="Dockyard containers (of any owner) that use it")

    @classmethod
    def from_view(cls, view: ImageView) -> ImageOut:
        info = view.info
        return cls(
            id=info.id,
            tags=list(info.tags),
            digests=list(info.digests),
            size=info.size,
            created=iso_or_none(info.created),
            exposed_ports=list(info.exposed_ports),
            architecture=info.architecture,
            labels=dict(info.labels),
            containers=view.containers,
        )


class ImagePageOut(Out):
    images: list[ImageOut]
    next_cursor: NextCursor
