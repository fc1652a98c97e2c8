"""What images and builds need from the outside world, and the values that cross.

``ImageEngine`` is the engine's image API (adapters/engine/images.py); the build context
is always a tar file Dockyard made itself (domain/images/contexts.py), never a URL the
engine would fetch. ``Credentials`` resolves the registry credentials of a pull or a push
(domain/images/registries.py); a ``RegistryAuth`` never reaches a log or an error body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry server; ``repr`` hides the secret."""

    server: str  # e.g. 127.0.0.1:5000 or registry.example.com
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ImageInfo:
    id: str  # sha256:…
    tags: tuple[str, ...]
    digests: tuple[str, ...]  # repo@sha256:…
    size: int
    created: datetime | None
    exposed_ports: tuple[str, ...]  # e.g. 80/tcp
    architecture: str
    labels: dict[str, str] = field(default_factory=dict)


class ProgressKind(StrEnum):
    LOG = "log"  # a line of build output (``text``)
    STEP = "step"  # a build step began: ``step`` of ``total``, ``text`` is the instruction
    LAYER = "layer"  # pull/push progress of one layer: ``layer``, ``current``/``total`` bytes
    STATUS = "status"  # a status line of a pull/push (``text``)
    RESULT = "result"  # the outcome: ``image_id`` and/or ``digest``
    ERROR = "error"  # the engine reported a failure: ``text`` is its message


@dataclass(frozen=True)
class Progress:
    """One parsed message of a build, pull or push stream."""

    kind: ProgressKind
    text: str = ""
    step: int | None = None
    total: int | None = None
    layer: str | None = None
    current: int | None = None
    image_id: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class BuildSpec:
    """One build as the engine runs it (classic builder, Engine API ``POST /build``)."""

    context: Path  # a tar (never compressed, never a URL) made by Dockyard
    dockerfile: str  # path inside the context, already checked to stay inside it
    tags: tuple[str, ...]
    build_args: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    network_mode: str = "none"  # the RUN steps' network
    memory: int | None = None  # bytes, for the RUN containers
    cpus: float | None = None


class ImageEngine(Protocol):
    """The engine's image API. Every call has a deadline; errors are Dockyard's
    (``map_engine_errors``). The streams end when the engine ends them; closing one
    early (``aclose``) closes the connection, which cancels the build/pull/push on the
    engine."""

    async def list_images(self) -> list[ImageInfo]: ...
    async def inspect_image(self, ref: str) -> ImageInfo | None: ...
    async def remove_image(self, ref: str, *, force: bool) -> None: ...
    async def tag_image(self, ref: str, repo: str, tag: str) -> None: ...
    def build(self, spec: BuildSpec) -> AsyncIterator[Progress]: ...
    def pull(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]: ...
    def push(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]: ...
    async def ensure_build_network(self, name: str) -> None: ...


class Credentials(Protocol):
    """The credentials a pull or push of ``ref`` by ``owner`` uses: a stored registry
    (``registry_id``, the owner's own or a shared one), inline ones, or the owner's
    stored credentials for the registry named in ``ref``; None when there are none."""

    async def resolve(
        self,
        owner: str,
        ref: str,
        *,
        registry_id: str | None = None,
        inline: RegistryAuth | None = None,
    ) -> RegistryAuth | None: ...
