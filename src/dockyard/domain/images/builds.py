"""Builds (SPEC §6): check the request, prepare the context, build on the engine, push.

A source that is already here (Dockerfile text, an upload) is prepared while the request
is answered, so a hostile archive or a Dockerfile path that leaves the context is the
client's 400 before any job exists; a source that must be fetched (``tar_url``, git) is
prepared by the job, whose error then says why. Either way the context is discarded when
the job ends. The build runs with the classic builder on ``BUILD_NETWORK`` with the
build memory and CPU limits; with ``push`` each tag is then pushed with the credentials
``Credentials`` resolves. Build-arg values and registry passwords never reach the job's
stored spec, its log, its events or Dockyard's own log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from dockyard.domain.access.permissions import Permission, Principal
from dockyard.domain.images.jobs import JobService
from dockyard.domain.images.models import Job, JobKind, JobStatus
from dockyard.domain.images.ports import (
    BuildSpec,
    Credentials,
    ImageEngine,
    ProgressKind,
    RegistryAuth,
)
from dockyard.domain.images.refs import check_tag
from dockyard.domain.images.running import JobRun, closing
from dockyard.domain.models import RESERVED_LABEL_PREFIXES
from dockyard.errors import DockyardError, ValidationError

log = structlog.get_logger("dockyard.builds")

MAX_TAGS = 16
MAX_BUILD_ARGS = 128
MAX_BUILD_ARGS_TOTAL = 64 * 1024
MAX_LABELS = 128
MAX_LABEL_VALUE = 4096
MASK_MIN = 4  # build-arg values at least this long are masked in the build log
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_LABEL_KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_./-]{0,127}\Z")
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth")


class Prepared(Protocol):
    """A context made ready for the engine (``contexts.PreparedContext``)."""

    @property
    def tar(self) -> Path: ...
    @property
    def dockerfile(self) -> str: ...


class Contexts(Protocol):
    """Turns a source into a tar the engine builds (``contexts.ContextBuilder``)."""

    async def prepare(self, source: Any, *, dockerfile: str, job_id: str) -> Prepared: ...
    def discard(self, job_id: str) -> None:
        """Remove what was made for the job (blocking: called in a thread)."""
        ...


@dataclass(frozen=True)
class BuildOptions:
    tags: tuple[str, ...]
    build_args: Mapping[str, str] = field(default_factory=dict, repr=False)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    dockerfile: str | None = None  # path inside the context; None: the source's default
    push: bool = False
    registry: str | None = None  # a stored registry's id
    auth: RegistryAuth | None = None  # inline credentials

    def check(self) -> None:
        """400 for what the engine must never see: bad tags, args, labels, target."""
        _bounded("tags", len(self.tags), 1, MAX_TAGS)
        for tag in self.tags:
            check_tag(tag)
        _bounded("build_args", len(self.build_args), 0, MAX_BUILD_ARGS)
        total = sum(len(k) + len(v) for k, v in self.build_args.items())
        if total > MAX_BUILD_ARGS_TOTAL:
            raise _invalid("build_args", f"build_args exceed {MAX_BUILD_ARGS_TOTAL} bytes")
        for name, value in self.build_args.items():
            if not _ARG_NAME.match(name) or "\x00" in value:
                raise _invalid("build_args", f"build arg {name[:64]!r} is not a valid name")
        _bounded("labels", len(self.labels), 0, MAX_LABELS)
        for key, value in self.labels.items():
            if not _LABEL_KEY.match(key) or key.startswith(RESERVED_LABEL_PREFIXES):
                raise _invalid("labels", f"label {key[:64]!r} is not allowed")
            if len(value) > MAX_LABEL_VALUE:
                raise _invalid("labels", f"label {key[:64]!r} is over {MAX_LABEL_VALUE} bytes")
        if self.target is not None and not _TARGET.match(self.target):
            raise _invalid("target", "target is not a valid build stage name")
        if (self.registry or self.auth) and not self.push:
            raise _invalid("push", "registry and auth are for a push: set push to true")
        if self.registry and self.auth:
            raise _invalid("auth", "give either registry or auth, not both")

    def described(self) -> dict[str, Any]:
        """As stored in the job: build-arg names only, no password."""
        out: dict[str, Any] = {
            "dockerfile": self.dockerfile,
            "build_args": sorted(self.build_args),
            "target": self.target,
            "labels": dict(self.labels),
            "no_cache": self.no_cache,
            "pull": self.pull,
            "push": self.push,
            "registry": self.registry,
        }
        if self.auth is not None:
            out["auth"] = {"server": self.auth.server, "username": self.auth.username}
        return out


@dataclass(frozen=True)
class BuildRequest:
    source: Any  # one of contexts.py's sources
    options: BuildOptions
    described: dict[str, Any]  # the source as stored and shown (no credentials)
    local: bool  # Dockerfile text or an upload: prepared before the job is queued


@dataclass(frozen=True)
class BuildConfig:
    network: str = "none"
    memory: int | None = None
    cpus: float | None = None
    push_timeout: float = 1800.0
    context_max_bytes: int = 512 * 1024**2  # an uploaded context, as sent


class BuildService:
    def __init__(
        self,
        jobs: JobService,
        images: ImageEngine,
        contexts: Contexts,
        credentials: Credentials,
        config: BuildConfig,
    ) -> None:
        self._jobs = jobs
        self._images = images
        self._contexts = contexts
        self._credentials = credentials
        self._config = config

    @property
    def context_max_bytes(self) -> int:
        return self._config.context_max_bytes

    async def submit(self, principal: Principal, request: BuildRequest) -> Job:
        """Queue a build (202); 400 for a bad request or a hostile local context, 429
        when the queue or the account has no room."""
        principal.require(Permission.IMAGES_BUILD)
        options = request.options
        options.check()
        self._jobs.check_room(principal.username)
        spec = {"source": request.described, **options.described()}
        job = self._jobs.new_job(
            JobKind.BUILD, principal.username, tags=list(options.tags), spec=spec
        )
        prepared: Prepared | None = None
        if request.local:
            try:
                prepared = await self._prepare(request, job.id)
            except BaseException:
                await self._discard(job.id)
                raise

        async def work(run: JobRun) -> None:
            await self._work(run, request, prepared)

        async def cleanup() -> None:
            await self._discard(job.id)

        masked = frozenset(v for v in options.build_args.values() if len(v) >= MASK_MIN)
        if options.auth is not None:
            masked |= {options.auth.password}
        return await self._jobs.submit(job, work, cleanup=cleanup, secrets=masked)

    async def _work(self, run: JobRun, request: BuildRequest, prepared: Prepared | None) -> None:
        options = request.options
        await run.set_status(JobStatus.BUILDING)
        if prepared is None:
            await run.write("Preparing the build context")
            prepared = await self._prepare(request, run.id)
        spec = BuildSpec(
            context=prepared.tar,
            dockerfile=prepared.dockerfile,
            tags=options.tags,
            build_args=dict(options.build_args),
            target=options.target,
            labels=dict(options.labels),
            no_cache=options.no_cache,
            pull=options.pull,
            network_mode=self._config.network,
            memory=self._config.memory,
            cpus=self._config.cpus,
        )
        await self._build(run, spec)
        if options.push:
            await run.set_status(JobStatus.PUSHING)
            for tag in options.tags:
                await self._push(run, tag, options)

    async def build_in(self, run: JobRun, request: BuildRequest) -> None:
        """Build ``request`` as a step of another job (a hub redeploy): the context is
        prepared by that job and removed when the build has ended, however it ended."""
        request.options.check()
        try:
            await self._work(run, request, None)
        finally:
            await asyncio.shield(self._discard(run.id))

    async def recover(self, running: Collection[str] = ()) -> int:
        """At start-up: the jobs a previous process left end ``interrupted``, and what
        it had made for their contexts goes (not those of the Dockyard processes whose
        ids are in ``running``: they still run them)."""
        return await self._jobs.recover(self._discard, running=running)

    async def _prepare(self, request: BuildRequest, job_id: str) -> Prepared:
        dockerfile = request.options.dockerfile or "Dockerfile"
        return await self._contexts.prepare(request.source, dockerfile=dockerfile, job_id=job_id)

    async def _discard(self, job_id: str) -> None:
        await asyncio.to_thread(self._contexts.discard, job_id)

    async def _build(self, run: JobRun, spec: BuildSpec) -> None:
        async with closing(self._images.build(spec)) as stream:
            async for progress in stream:
                if progress.kind is ProgressKind.ERROR:
                    await run.fail("engine_error", "BUILD_FAILED", progress.text)
                elif progress.kind is ProgressKind.RESULT:
                    run.job.image_id = progress.image_id or run.job.image_id
                else:
                    await run.follow(progress)
        if run.job.image_id is None:
            info = await self._images.inspect_image(spec.tags[0])
            if info is None:
                await run.fail("engine_error", "BUILD_FAILED", "the engine made no image")
            else:
                run.job.image_id = info.id
        await run.write(f"Built {run.job.image_id}, tagged {', '.join(spec.tags)}")
        await run.save()

    async def _push(self, run: JobRun, tag: str, options: BuildOptions) -> None:
        auth = await self._credentials.resolve(
            run.job.owner, tag, registry_id=options.registry, inline=options.auth
        )
        if auth is not None:
            run.mask(auth.password)
        await run.write(f"Pushing {tag}")
        step = f"push {tag}"
        deadline = asyncio.timeout(self._config.push_timeout)
        try:
            async with deadline, closing(self._images.push(tag, auth)) as stream:
                async for progress in stream:
                    if progress.kind is ProgressKind.ERROR:
                        kind, code = push_error(progress.text)
                        await run.fail(kind, code, progress.text, step=step)
                    elif progress.kind is ProgressKind.RESULT:
                        run.job.digest = progress.digest or run.job.digest
                    else:
                        await run.follow(progress)
        except TimeoutError:
            if not deadline.expired():
                raise
            message = f"the push did not end within {self._config.push_timeout:g} s"
            await run.fail("timeout", "PUSH_TIMEOUT", message, step=step)
        except DockyardError as exc:  # wrong credentials, an unreachable registry, …
            await run.fail(exc.kind, exc.code, exc.message, step=step)
        await run.save()


def push_error(text: str) -> tuple[str, str]:
    """The kind and code of a push's (or pull's) error message."""
    lowered = text.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return "auth_error", "REGISTRY_AUTH_FAILED"
    return "engine_error", "PUSH_FAILED"


def _bounded(name: str, count: int, low: int, high: int) -> None:
    if not low <= count <= high:
        raise _invalid(name, f"{name} takes {low} to {high} entries")


def _invalid(name: str, message: str) -> ValidationError:
    return ValidationError(message, code="INVALID_FIELD", details={"field": name})
