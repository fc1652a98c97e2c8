"""The API's resources for the async client. ``_sync_resources.py`` is generated from this
file (``scripts/unasync_client.py``); edit this one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from dockyard.client import _async_io as io
from dockyard.client import archives
from dockyard.client._async_transport import STREAM_TIMEOUT, AsyncTransport, new_idempotency_key

if TYPE_CHECKING:
    from pydantic import BaseModel

    from dockyard.client.models import (
        ChangeList,
        Container,
        ContainerStatus,
        FileListing,
        Image,
        Job,
        UploadResult,
    )

M = TypeVar("M", bound="BaseModel")
Progress = Callable[[int, int | None], None]  # (bytes done, total or None)


async def paginate(
    http: AsyncTransport, path: str, key: str, model: type[M], params: dict[str, Any]
) -> AsyncIterator[M]:
    """Every item of a paged list, one page at a time, as the caller goes (SPEC §4 cursors)."""
    async for item in paginate_data(http, path, key, params):
        yield model.model_validate(item)


async def paginate_data(
    http: AsyncTransport, path: str, key: str, params: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """``paginate``'s items as the JSON objects the server sent (no model built)."""
    params = dict(params)
    while True:
        page = (await http.request("GET", path, params=params)).json()
        for item in page[key]:
            yield item
        if not page.get("next_cursor"):
            return
        params["cursor"] = page["next_cursor"]


def accepted(body: dict[str, Any]) -> dict[str, Any]:
    """A 202's job, less ``JobIdentifier`` (seed 002's name for ``job_id``, sent again)."""
    return {key: value for key, value in body.items() if key != "JobIdentifier"}


class AsyncContainers:
    """``/containers``: create, read, change, act on and delete containers."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    async def create(self, image: str, *, start: bool = False, **fields: Any) -> Container:
        """``POST /containers`` with ``image`` and any create field of SPEC §4 (``env``,
        ``tags``, ``resources``, ``ports``, ``command``, ``name``, ``restart``, …); sent
        with an ``Idempotency-Key``, so a retried create never makes two."""
        from dockyard.client.models import Container

        body = {"image": image, "start": start, **fields}
        headers = {"Idempotency-Key": new_idempotency_key()}
        resp = await self._http.request("POST", "/containers", json=body, headers=headers)
        return Container.model_validate(resp.json())

    async def get(self, cuid: str) -> Container:
        from dockyard.client.models import Container

        resp = await self._http.request("GET", f"/containers/{cuid}")
        return Container.model_validate(resp.json())

    def list_data(
        self,
        *,
        status: str | list[str] | None = None,
        tag: str | None = None,
        image: str | None = None,
        owner: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """``list()``'s containers as the JSON objects the server sent: no model is built,
        so the models are never loaded (~300 ms the first time; the CLI's ``ps``)."""
        params: dict[str, Any] = {"status": status, "tag": tag, "image": image}
        params.update(owner=owner, limit=page_size)
        return paginate_data(self._http, "/containers", "containers", params)

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        tag: str | None = None,
        image: str | None = None,
        owner: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Container]:
        """Every matching container, newest first; pages are fetched as you iterate."""
        from dockyard.client.models import Container

        params: dict[str, Any] = {"status": status, "tag": tag, "image": image}
        params.update(owner=owner, limit=page_size)
        return paginate(self._http, "/containers", "containers", Container, params)

    async def update(self, cuid: str, **changes: Any) -> Container:
        """``PATCH``: ``env`` merged (None removes a key), ``tags`` replaced, …"""
        from dockyard.client.models import Container

        resp = await self._http.request("PATCH", f"/containers/{cuid}", json=changes)
        return Container.model_validate(resp.json())

    async def delete(self, cuid: str) -> None:
        await self._http.request("DELETE", f"/containers/{cuid}")

    async def _act(self, cuid: str, action: str) -> Container:
        from dockyard.client.models import Container

        resp = await self._http.request("POST", f"/containers/{cuid}/{action}")
        return Container.model_validate(resp.json())

    async def start(self, cuid: str) -> Container:
        return await self._act(cuid, "start")

    async def stop(self, cuid: str) -> Container:
        return await self._act(cuid, "stop")

    async def restart(self, cuid: str) -> Container:
        return await self._act(cuid, "restart")

    async def pause(self, cuid: str) -> Container:
        return await self._act(cuid, "pause")

    async def unpause(self, cuid: str) -> Container:
        return await self._act(cuid, "unpause")

    async def kill(self, cuid: str) -> Container:
        return await self._act(cuid, "kill")

    async def scale(self, cuid: str, replicas: int) -> Container:
        from dockyard.client.models import Container

        path = f"/containers/{cuid}/scale"
        resp = await self._http.request("POST", path, json={"replicas": replicas})
        return Container.model_validate(resp.json())

    async def set_ports(self, cuid: str, ports: Sequence[dict[str, Any]]) -> Container:
        from dockyard.client.models import Container

        path = f"/containers/{cuid}/ports"
        resp = await self._http.request("PATCH", path, json={"ports": [dict(p) for p in ports]})
        return Container.model_validate(resp.json())

    async def status(self, cuid: str) -> ContainerStatus:
        from dockyard.client.models import ContainerStatus

        resp = await self._http.request("GET", f"/containers/{cuid}/status")
        return ContainerStatus.model_validate(resp.json())


class AsyncFiles:
    """Files in and out of a container's ``/app`` (or anywhere in it, to read)."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    async def upload(
        self,
        cuid: str,
        source: str | os.PathLike[str],
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> UploadResult:
        """A folder (zipped on the fly), a ZIP or a tar into ``path`` (default ``/app``).
        The upload is atomic on the server: a refused archive leaves ``/app`` as it was."""
        archive, size = await io.run_blocking(archives.zip_for_upload, source)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, size)

        try:
            resp = await self._http.request(
                "POST",
                f"/containers/{cuid}/upload-zip",
                params={"path": path},
                content=io.iter_file(archive, advance),
                headers={"Content-Type": "application/zip", "Content-Length": str(size)},
                timeouts=STREAM_TIMEOUT,
            )
        finally:
            archive.close()
        from dockyard.client.models import UploadResult

        return UploadResult.model_validate(resp.json())

    async def download(self, cuid: str, path: str) -> bytes:
        """One file's bytes."""
        resp = await self._http.request(
            "GET", f"/containers/{cuid}/download", params={"path": path}, timeouts=STREAM_TIMEOUT
        )
        return resp.content

    async def download_to(
        self,
        cuid: str,
        path: str,
        dest: str | os.PathLike[str],
        *,
        zip: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """A file (or, with ``zip=True``, a folder as ZIP) streamed to ``dest``."""
        route = "download-zip" if zip else "download"
        target = Path(dest)
        async with self._http.stream(
            "GET", f"/containers/{cuid}/{route}", params={"path": path}, timeouts=STREAM_TIMEOUT
        ) as resp:
            total = resp.headers.get("content-length")
            size = int(total) if total and total.isdigit() else None
            done = 0
            out = await io.run_blocking(target.open, "wb")
            try:
                async for chunk in resp.aiter_bytes():
                    await io.run_blocking(out.write, chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, size)
            finally:
                out.close()
        return target

    async def download_zip(
        self,
        cuid: str,
        path: str,
        dest: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> Path:
        """A folder as a ZIP file at ``dest``; ``progress(done, total_or_None)``."""
        return await self.download_to(cuid, path, dest, zip=True, progress=progress)

    async def list(self, cuid: str, path: str = "/app") -> FileListing:
        from dockyard.client.models import FileListing

        resp = await self._http.request("GET", f"/containers/{cuid}/files", params={"path": path})
        return FileListing.model_validate(resp.json())

    async def changes(self, cuid: str) -> ChangeList:
        from dockyard.client.models import ChangeList

        resp = await self._http.request("GET", f"/containers/{cuid}/changes")
        return ChangeList.model_validate(resp.json())


class AsyncImages:
    """``/images``: the engine's images, and pulls as jobs."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    def list(self, *, tag: str | None = None, page_size: int | None = None) -> AsyncIterator[Image]:
        from dockyard.client.models import Image

        params = {"tag": tag, "limit": page_size}
        return paginate(self._http, "/images", "images", Image, params)

    async def get(self, ref: str) -> Image:
        from dockyard.client.models import Image

        resp = await self._http.request("GET", f"/images/{quote(ref, safe='/:@')}")
        return Image.model_validate(resp.json())

    async def delete(self, ref: str, *, force: bool = False) -> None:
        params = {"force": True} if force else None
        await self._http.request("DELETE", f"/images/{quote(ref, safe='/:@')}", params=params)

    async def pull(self, image: str, *, registry: str | None = None) -> Job:
        """Start a pull (a job: follow it with ``builds.logs`` or ``builds.wait``)."""
        from dockyard.client.models import Job

        body: dict[str, Any] = {"image": image}
        if registry is not None:
            body["registry"] = registry
        headers = {"Idempotency-Key": new_idempotency_key()}
        resp = await self._http.request("POST", "/images/pull", json=body, headers=headers)
        return Job.model_validate(accepted(resp.json()))
