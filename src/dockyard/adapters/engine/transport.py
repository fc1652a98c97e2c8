"""Every plain HTTP request to the Engine API goes through ``EngineTransport``.

It sends on aiodocker's own aiohttp session to aiodocker's resolved host (both public
attributes of ``aiodocker.Docker``), so one connection pool serves these requests and
aiodocker's exec/attach streams, and no private aiodocker member is touched. Paths are
unversioned: the engine then speaks its own API version, which is what aiodocker's
"auto" version picked too, without its extra ``GET /version``.

(httpx over the unix socket was measured here at ~1.2 ms more per request than aiohttp,
for calls the benchmarks time at 1-2 ms in all; so aiohttp it is.)

Deadlines: a short call gets ``timeout`` in total; a stream gets ``timeout`` for its
answer's head, then a per-read deadline (``read_timeout``, None for follows and events).
Every failure comes out through ``map_engine_errors``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import aiodocker
import aiohttp

from dockyard.adapters.engine.errors import EngineStatusError, map_engine_errors
from dockyard.errors import DockyardError

Params = Mapping[str, str] | Sequence[tuple[str, str]]  # a sequence when a name repeats
_CONNECT_TIMEOUT = 10.0


class EngineTransport:
    """Short JSON calls and opened streams to the engine, with deadlines and one mapping."""

    def __init__(self, docker: aiodocker.Docker, timeout: float) -> None:
        self._docker = docker
        self.timeout = timeout

    @property
    def docker(self) -> aiodocker.Docker:
        return self._docker

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
        stream: bool = False,
        missing_ok: bool = False,
    ) -> aiohttp.ClientResponse | None:
        timeout = aiohttp.ClientTimeout(
            total=None if stream else self.timeout,
            sock_connect=_CONNECT_TIMEOUT,
            sock_read=read_timeout,
        )
        response = await self._docker.session.request(
            method,
            f"{self._docker.docker_host}/{path}",
            params=params,
            json=body,
            data=data,
            headers=headers,
            timeout=timeout,
        )
        if response.status == 404 and missing_ok:
            response.release()
            return None
        if response.status >= 400:
            try:
                raw = await response.read()
            finally:
                response.release()
            raise EngineStatusError(response.status, _message(raw))
        return response

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        missing_ok: bool = False,
        not_found: Callable[[], DockyardError] | None = None,
    ) -> Any:
        """A short call's JSON answer (None for an empty body, or a 404 if ``missing_ok``)."""
        with map_engine_errors(f"{method} {path}", not_found=not_found):
            async with asyncio.timeout(self.timeout):
                response = await self._send(
                    method, path, params=params, body=body, missing_ok=missing_ok
                )
                if response is None:
                    return None
                async with response:
                    raw = await response.read()
            return json.loads(raw) if raw.strip() else None

    async def head(
        self, path: str, *, params: Params | None = None
    ) -> aiohttp.ClientResponse | None:
        """A HEAD's answer (headers only), or None if the engine answered 404."""
        with map_engine_errors(f"HEAD {path}"):
            async with asyncio.timeout(self.timeout):
                response = await self._send("HEAD", path, params=params, missing_ok=True)
        if response is not None:
            response.release()
        return response

    async def open(
        self,
        path: str,
        *,
        what: str,
        params: Params | None = None,
        read_timeout: float | None,
        not_found: Callable[[], DockyardError] | None = None,
        method: str = "GET",
        data: Any = None,
        headers: dict[str, str] | None = None,
        head_timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """A streamed request (GET unless ``method``; ``data`` a body aiohttp streams, such
        as an open file), its head within ``head_timeout`` (default: the short deadline);
        read its body with ``stream_of`` or ``lines_of``, and close it."""
        with map_engine_errors(what, not_found=not_found):
            async with asyncio.timeout(head_timeout or self.timeout):
                response = await self._send(
                    method,
                    path,
                    params=params,
                    data=data,
                    headers=headers,
                    read_timeout=read_timeout,
                    stream=True,
                )
        assert response is not None  # only missing_ok gives None
        return response


async def stream_of(
    response: aiohttp.ClientResponse, name: str, chunk: int | None = None
) -> AsyncIterator[bytes]:
    """The body of an opened stream; a read that fails is ``the engine's <name> stream
    broke`` (or the mapped error), never aiohttp's."""
    content = response.content
    reader = content.iter_any() if chunk is None else content.iter_chunked(chunk)
    with map_engine_errors(f"the {name} stream", stream=name):
        async for data in reader:
            yield data


async def lines_of(response: aiohttp.ClientResponse, name: str) -> AsyncIterator[bytes]:
    """The body of an opened stream, line by line (the events stream)."""
    with map_engine_errors(f"the {name} stream", stream=name):
        async for line in response.content:
            yield line


def _message(raw: bytes) -> str:
    """The engine's error body is ``{"message": ...}``; anything else is shown as text."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return raw.decode("utf-8", "replace").strip()
