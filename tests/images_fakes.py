"""Fakes of the image engine, the build contexts and the registry credentials, for the
unit tests of jobs, builds and pulls (the queue and the API are what is tested there)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.domain.images.ports import (
    BuildSpec,
    ImageInfo,
    Progress,
    ProgressKind,
    RegistryAuth,
)

Script = list[Progress | asyncio.Event]


def step(n: int, total: int, text: str) -> Progress:
    return Progress(ProgressKind.STEP, text=text, step=n, total=total)


def line(text: str) -> Progress:
    return Progress(ProgressKind.LOG, text=text)


def ok_build(image_id: str = "sha256:" + "ab" * 32) -> Script:
    return [
        step(1, 2, "FROM dockyard-test/busybox:latest"),
        line(" ---> 0123456789ab"),
        step(2, 2, "RUN echo hi"),
        line("hi"),
        Progress(ProgressKind.RESULT, image_id=image_id),
    ]


class ScriptedImages:
    """Streams follow their scripts; an ``asyncio.Event`` in a script holds the stream
    until the test sets it. ``closed`` counts streams closed early or at their end."""

    def __init__(self) -> None:
        self.build_script: Script = ok_build()
        self.push_script: Script = [Progress(ProgressKind.RESULT, digest="sha256:" + "cd" * 32)]
        self.pull_script: Script = [
            Progress(ProgressKind.LAYER, text="Downloading", layer="l1", current=5, total=10),
            Progress(ProgressKind.LAYER, text="Pull complete", layer="l1", current=10, total=10),
        ]
        self.builds: list[BuildSpec] = []
        self.pushes: list[tuple[str, RegistryAuth | None]] = []
        self.pulls: list[tuple[str, RegistryAuth | None]] = []
        self.started = asyncio.Event()  # a stream has begun
        self.closed = 0
        self.images: dict[str, ImageInfo] = {}
        self.networks: list[str] = []

    async def _play(self, script: Script) -> AsyncIterator[Progress]:
        self.started.set()
        try:
            for item in script:
                if isinstance(item, asyncio.Event):
                    await item.wait()
                else:
                    yield item
        finally:
            self.closed += 1

    def build(self, spec: BuildSpec) -> AsyncIterator[Progress]:
        self.builds.append(spec)
        for tag in spec.tags:
            self.images[tag] = _info("sha256:" + "ab" * 32, tag)
        return self._play(self.build_script)

    def push(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]:
        self.pushes.append((ref, auth))
        return self._play(self.push_script)

    def pull(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]:
        self.pulls.append((ref, auth))
        self.images[ref] = _info("sha256:" + "ef" * 32, ref)
        return self._play(self.pull_script)

    async def list_images(self) -> list[ImageInfo]:
        return list(self.images.values())

    async def inspect_image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    async def remove_image(self, ref: str, *, force: bool) -> None:
        self.images.pop(ref, None)

    async def tag_image(self, ref: str, repo: str, tag: str) -> None:
        self.images[f"{repo}:{tag}"] = self.images[ref]

    async def ensure_build_network(self, name: str) -> None:
        self.networks.append(name)


def _info(image_id: str, tag: str) -> ImageInfo:
    return ImageInfo(
        id=image_id,
        tags=(tag,),
        digests=(),
        size=1,
        created=None,
        exposed_ports=(),
        architecture="amd64",
    )


@dataclass
class FakePrepared:
    tar: Path
    dockerfile: str
    size: int = 0
    entries: int = 0


@dataclass
class FakeContexts:
    """Prepares any source as an empty tar under ``root``; ``refuse`` fails the next."""

    root: Path
    prepared: list[tuple[Any, str | None, str]] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    refuse: Exception | None = None

    async def prepare(self, source: Any, *, dockerfile: str, job_id: str) -> FakePrepared:
        self.prepared.append((source, dockerfile, job_id))
        if self.refuse is not None:
            raise self.refuse
        self.root.mkdir(parents=True, exist_ok=True)
        tar = self.root / f"{job_id}.tar"
        tar.write_bytes(b"\0" * 1024)
        return FakePrepared(tar, dockerfile)

    def discard(self, job_id: str) -> None:
        self.discarded.append(job_id)
        (self.root / f"{job_id}.tar").unlink(missing_ok=True)


class FakeCredentials:
    """Inline credentials as given; a stored registry id names one in ``stored``."""

    def __init__(self) -> None:
        self.stored: dict[str, RegistryAuth] = {}

    async def resolve(
        self,
        owner: str,
        ref: str,
        *,
        registry_id: str | None = None,
        inline: RegistryAuth | None = None,
    ) -> RegistryAuth | None:
        if registry_id is not None:
            return self.stored[registry_id]
        return inline
