"""Builds and their logs, and waiting for any job (builds and pulls). ``_sync_jobs.py``
is generated from this file (``scripts/unasync_client.py``); edit this one."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard.client import _async_io as io
from dockyard.client import archives
from dockyard.client._async_resources import accepted, paginate
from dockyard.client._async_transport import STREAM_TIMEOUT, AsyncTransport, new_idempotency_key
from dockyard.client.progress import JobLine, StepTracker

if TYPE_CHECKING:
    from dockyard.client.models import Job

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


class AsyncBuilds:
    """``/builds``: image builds (and pull jobs), their logs and their end."""

    def __init__(self, http: AsyncTransport) -> None:
        self._http = http

    async def create(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        dockerfile: str | None = None,
        git: str | None = None,
        ref: str | None = None,
        subdir: str | None = None,
        tags: list[str] | None = None,
        **options: Any,
    ) -> Job:
        """Start a build from exactly one source: a context folder ``path`` (tarred on the
        fly; its ``Dockerfile`` unless ``dockerfile_path=``), ``dockerfile`` text, or a
        ``git`` URL (with ``ref`` and ``subdir``). ``options`` are the API's (``build_args``,
        ``target``, ``labels``, ``no_cache``, ``push``, ``registry``, …)."""
        from dockyard.client.models import Job

        headers = {"Idempotency-Key": new_idempotency_key()}
        if sum(x is not None for x in (path, dockerfile, git)) != 1:
            raise ValueError("give exactly one of path, dockerfile or git")
        if path is not None:
            resp = await self._post_context(path, tags, options, headers)
        else:
            body: dict[str, Any] = dict(options)
            if tags is not None:
                body["tags"] = tags
            if dockerfile is not None:
                body["dockerfile"] = dockerfile
            else:
                body["git"] = {"url": git, "ref": ref, "subdir": subdir}
                body["git"] = {k: v for k, v in body["git"].items() if v is not None}
            resp = await self._http.request("POST", "/builds", json=body, headers=headers)
        return Job.model_validate(accepted(resp.json()))

    async def _post_context(
        self,
        path: str | os.PathLike[str],
        tags: list[str] | None,
        options: dict[str, Any],
        headers: dict[str, str],
    ) -> Any:
        archive, size = await io.run_blocking(archives.tar_context, path)
        params: dict[str, Any] = {"tags": tags}
        for key, value in options.items():
            params[key] = json.dumps(value) if isinstance(value, dict) else value
        headers = {**headers, "Content-Type": "application/gzip", "Content-Length": str(size)}
        try:
            return await self._http.request(
                "POST",
                "/builds",
                params=params,
                content=io.iter_file(archive),
                headers=headers,
                timeouts=STREAM_TIMEOUT,
            )
        finally:
            archive.close()

    async def get(self, job_id: str) -> Job:
        from dockyard.client.models import Job

        resp = await self._http.request("GET", f"/builds/{job_id}")
        return Job.model_validate(resp.json())

    def list(
        self,
        *,
        status: str | list[str] | None = None,
        kind: str | list[str] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Job]:
        from dockyard.client.models import Job

        params = {"status": status, "kind": kind, "limit": page_size}
        return paginate(self._http, "/builds", "builds", Job, params)

    async def cancel(self, job_id: str) -> Job:
        from dockyard.client.models import Job

        resp = await self._http.request("POST", f"/builds/{job_id}/cancel")
        return Job.model_validate(resp.json())

    async def logs(self, job_id: str, *, follow: bool = False) -> AsyncIterator[str]:
        """The job's log lines; with ``follow`` until the job ends."""
        async with self._http.stream(
            "GET",
            f"/builds/{job_id}/logs",
            params={"follow": follow or None},
            timeouts=STREAM_TIMEOUT,
        ) as resp:
            async for line in resp.aiter_lines():
                yield line

    async def follow(self, job_id: str) -> AsyncIterator[JobLine]:
        """The job's log as it is written, from its first line to the job's end, each line
        with the build step it belongs to (``JobLine``: ``text``, ``step``,
        ``total_steps``; what ``dockyard build`` shows as its log and step bar). For a
        build or a pull; ``wait`` then says how it ended."""
        steps = StepTracker()
        async for text in self.logs(job_id, follow=True):
            yield steps.line(text)

    async def watch(self, job_id: str, *, interval: float = 0.5) -> AsyncIterator[Job]:
        """The job every ``interval`` seconds until it has ended (the last one yielded is
        final): its status, ``step``/``total_steps`` and, for a pull or push, each layer's
        bytes in ``progress`` (``{"status", "current", "total"}`` per layer)."""
        while True:
            job = await self.get(job_id)
            yield job
            if job.status in FINAL_STATES:
                return
            await io.sleep(interval)

    async def wait(self, job_id: str) -> Job:
        """The job once it has ended (``succeeded``, ``failed`` or ``cancelled``): its log
        is followed to its end, then the job read."""
        job = await self.get(job_id)
        while job.status not in FINAL_STATES:
            async for _ in self.logs(job_id, follow=True):
                pass
            job = await self.get(job_id)
        return job
