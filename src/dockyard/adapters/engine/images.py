"""``ImageEngine`` over the Docker Engine API: list, inspect, tag, remove, build, pull, push.

It shares ``DockerEngine``'s transport (one aiodocker session, one connection pool, the
same deadlines and ``map_engine_errors``). Builds use the classic builder (``version=1``)
with a tar Dockyard made, streamed from disk as the request body; never ``remote=``.

Streams: the head of a build comes back at once; the head of a pull only once the engine
has spoken to the registry, so pulls and pushes get ``idle`` for their head and between
two messages (a registry that cannot be reached ends at that deadline, as
``REGISTRY_UNREACHABLE``). A build's RUN step may be silent for long, so a build has no
idle deadline: its caller's overall deadline ends it. Closing a stream early (``aclose``)
closes the connection, and the engine then cancels the build, pull or push - measured
here (engine 20.10): a build's ``RUN sleep 60`` container is gone within ~1 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from dockyard.adapters.engine.client import DockerEngine
from dockyard.adapters.engine.errors import map_engine_errors
from dockyard.adapters.engine.progress import (
    JsonMessages,
    build_progress,
    is_auth_failure,
    registry_auth_error,
    registry_auth_header,
    scrub,
    transfer_progress,
)
from dockyard.adapters.engine.transport import EngineTransport, stream_of
from dockyard.domain.images.ports import BuildSpec, ImageInfo, Progress, RegistryAuth
from dockyard.domain.images.refs import check_ref, parse_ref
from dockyard.errors import (
    ConflictError,
    DockyardError,
    EngineError,
    EngineUnavailableError,
    NotFoundError,
    ValidationError,
)

log = structlog.get_logger("dockyard.engine.images")

DEFAULT_IDLE = 60.0
_INSPECT_AT_ONCE = 8
_CPU_PERIOD = 100_000


def _image_missing(ref: str) -> Callable[[], NotFoundError]:
    def missing() -> NotFoundError:
        return NotFoundError(
            f"image {ref} not found", code="IMAGE_NOT_FOUND", details={"image": ref}
        )

    return missing


def image_info(data: dict[str, Any]) -> ImageInfo:
    """An inspect answer (``GET /images/{name}/json``) as ``ImageInfo``."""
    config = data.get("Config") or {}
    created = data.get("Created")
    when: datetime | None = None
    if isinstance(created, str) and created:
        try:
            when = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00")
        except ValueError:
            when = None
    return ImageInfo(
        id=str(data.get("Id", "")),
        tags=tuple(t for t in data.get("RepoTags") or () if t != "<none>:<none>"),
        digests=tuple(d for d in data.get("RepoDigests") or () if not d.startswith("<none>")),
        size=int(data.get("Size") or 0),
        created=when,
        exposed_ports=tuple(sorted((config.get("ExposedPorts") or {}).keys())),
        architecture=str(data.get("Architecture") or ""),
        labels=dict(config.get("Labels") or {}),
    )


def build_params(spec: BuildSpec) -> list[tuple[str, str]]:
    """The query of ``POST /build`` (a list: ``t`` repeats)."""
    params: list[tuple[str, str]] = [
        ("version", "1"),
        ("dockerfile", spec.dockerfile),
        ("rm", "true"),
        ("forcerm", "true"),
        ("nocache", "true" if spec.no_cache else "false"),
        ("pull", "true" if spec.pull else "false"),
        ("networkmode", spec.network_mode),
    ]
    params += [("t", tag) for tag in spec.tags]
    if spec.build_args:
        params.append(("buildargs", json.dumps(spec.build_args)))
    if spec.labels:
        params.append(("labels", json.dumps(spec.labels)))
    if spec.target:
        params.append(("target", spec.target))
    if spec.memory:
        params += [("memory", str(spec.memory)), ("memswap", str(spec.memory))]
    if spec.cpus:
        params += [("cpuperiod", str(_CPU_PERIOD)), ("cpuquota", str(int(spec.cpus * _CPU_PERIOD)))]
    return params


@contextmanager
def _refusals(ref: str) -> Iterator[None]:
    """The engine's 400 and 409 on an image, as what they mean to the caller."""
    try:
        yield
    except EngineError as exc:
        status = exc.details.get("engine_status")
        if status == 409:
            text = exc.message.split(": ", 1)[-1]
            raise ConflictError(
                f"the engine keeps image {ref}: {text}",
                code="IMAGE_IN_USE" if "being used" in text else "IMAGE_CONFLICT",
                details={"image": ref},
            ) from exc
        if status == 400:
            raise ValidationError(
                exc.message.split(": ", 1)[-1],
                code="INVALID_IMAGE_REF",
                details={"field": "image", "provided": ref[:200]},
            ) from exc
        raise


@contextmanager
def _build_refusals() -> Iterator[None]:
    """A build the engine refuses before it starts is the request's fault (400)."""
    try:
        yield
    except EngineError as exc:
        status = exc.details.get("engine_status")
        text = exc.message.split(": ", 1)[-1]
        if status == 400 or "Cannot locate specified Dockerfile" in text:
            raise ValidationError(
                f"the engine refused the build: {text}", code="BUILD_REFUSED"
            ) from exc
        raise


class DockerImages:
    """``ImageEngine`` over the Docker Engine API, on a ``DockerEngine``'s session."""

    def __init__(self, engine: DockerEngine, *, idle: float = DEFAULT_IDLE) -> None:
        self._engine = engine
        self._idle = idle

    def _http(self) -> EngineTransport:
        return self._engine._http()  # the engine's one transport (same package)

    async def list_images(self) -> list[ImageInfo]:
        rows = await self._http().call("GET", "images/json") or []
        gate = asyncio.Semaphore(_INSPECT_AT_ONCE)

        async def one(image_id: str) -> ImageInfo | None:
            async with gate:
                return await self.inspect_image(image_id)

        found = await asyncio.gather(*(one(str(row["Id"])) for row in rows))
        return [info for info in found if info is not None]

    async def inspect_image(self, ref: str) -> ImageInfo | None:
        data = await self._http().call("GET", f"images/{check_ref(ref)}/json", missing_ok=True)
        return None if data is None else image_info(data)

    async def remove_image(self, ref: str, *, force: bool) -> None:
        with _refusals(ref):
            await self._http().call(
                "DELETE",
                f"images/{check_ref(ref)}",
                params={"force": "true" if force else "false", "noprune": "false"},
                not_found=_image_missing(ref),
            )

    async def tag_image(self, ref: str, repo: str, tag: str) -> None:
        with _refusals(ref):
            await self._http().call(
                "POST",
                f"images/{check_ref(ref)}/tag",
                params={"repo": repo, "tag": tag},
                not_found=_image_missing(ref),
            )

    async def ensure_build_network(self, name: str) -> None:
        """A bridge for the RUN steps, labelled as Dockyard's; ``none`` needs none."""
        if name in ("none", ""):
            return
        http = self._http()
        if await http.call("GET", f"networks/{name}", missing_ok=True) is not None:
            return
        config = {
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": True,
            "Labels": {"dockyard.managed": "true", "dockyard.purpose": "build"},
        }
        try:
            await http.call("POST", "networks/create", body=config)
        except EngineError as exc:
            if "already exists" not in exc.message:
                raise

    async def build(self, spec: BuildSpec) -> AsyncIterator[Progress]:
        http = self._http()
        size = (await asyncio.to_thread(spec.context.stat)).st_size
        handle = await asyncio.to_thread(spec.context.open, "rb")
        try:
            with _build_refusals():
                response = await http.open(
                    "build",
                    what="the build request",
                    method="POST",
                    params=build_params(spec),
                    data=handle,
                    headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
                    read_timeout=None,
                )
            try:
                async for message in _messages(response, "build"):
                    progress = build_progress(message)
                    if progress is not None:
                        yield progress
            finally:
                response.close()
        finally:
            await asyncio.to_thread(handle.close)

    async def pull(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]:
        parsed = parse_ref(ref)
        params = {"fromImage": parsed.name}
        if parsed.digest:
            params["fromImage"] += f"@{parsed.digest}"
        else:
            params["tag"] = parsed.tag or "latest"
        async for progress in self._transfer("images/create", params, ref, auth, "pull"):
            yield progress

    async def push(self, ref: str, auth: RegistryAuth | None) -> AsyncIterator[Progress]:
        parsed = parse_ref(ref)
        params = {"tag": parsed.tag or "latest"}
        async for progress in self._transfer(
            f"images/{parsed.name}/push", params, ref, auth, "push"
        ):
            yield progress

    async def _transfer(
        self,
        path: str,
        params: dict[str, str],
        ref: str,
        auth: RegistryAuth | None,
        name: str,
    ) -> AsyncIterator[Progress]:
        server = parse_ref(ref).registry
        with _registry_errors(ref, server, auth, name, self._idle):
            response = await self._http().open(
                path,
                what=f"the {name} of {ref}",
                method="POST",
                params=params,
                headers={"X-Registry-Auth": registry_auth_header(auth)},
                read_timeout=self._idle,
                head_timeout=self._idle,
                not_found=_image_missing(ref),
            )
        try:
            with _registry_errors(ref, server, auth, name, self._idle):
                async for message in _messages(response, name):
                    progress = transfer_progress(message)
                    if progress is None:
                        continue
                    if progress.kind == "error":
                        if is_auth_failure(progress.text):
                            raise registry_auth_error(server, progress.text, auth)
                        progress = Progress(progress.kind, text=scrub(progress.text, auth))
                    yield progress
        finally:
            response.close()


async def _messages(response: aiohttp.ClientResponse, name: str) -> AsyncIterator[dict[str, Any]]:
    decoder = JsonMessages()
    async for chunk in stream_of(response, name):
        for message in decoder.feed(chunk):
            yield message


@contextmanager
def _registry_errors(
    ref: str, server: str, auth: RegistryAuth | None, name: str, idle: float
) -> Iterator[None]:
    """What a pull or push's refusal means: wrong credentials (401, the secret never in
    the text), an unknown image, a registry that did not answer within ``idle``."""
    try:
        with map_engine_errors(f"the {name} of {ref}", stream=name):
            yield
    except EngineUnavailableError as exc:
        raise EngineError(
            f"the {name} of {ref} stopped: nothing came from the registry {server} "
            f"(or the engine) for {idle:g} s",
            code="REGISTRY_UNREACHABLE",
            details={"registry": server, "idle_seconds": idle},
        ) from exc
    except NotFoundError:
        raise
    except EngineError as exc:
        text = scrub(exc.message, auth)
        if is_auth_failure(text):
            raise registry_auth_error(server, text, auth) from exc
        status = exc.details.get("engine_status")
        code = "INVALID_IMAGE_REF" if status == 400 else "REGISTRY_FAILED"
        error: DockyardError = (
            ValidationError(text, code=code, details={"image": ref[:200]})
            if status == 400
            else EngineError(text, code=code, details={"registry": server})
        )
        raise error from exc
