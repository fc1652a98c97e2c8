"""The Docker Engine API, through aiodocker, behind one choke point.

Every request goes through ``DockerEngine._json`` (short calls, a deadline each) or
``stream_events`` (a long stream without a total deadline); aiodocker's errors are
translated there once, chained, into ``EngineError``s.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import structlog

from dockyard.adapters.engine.cgroups import sample_from_stats
from dockyard.adapters.engine.logs import EngineLogStream, open_logs
from dockyard.adapters.engine.streams import (
    AttachSession,
    ExecSession,
    open_attach,
    open_exec,
    recent_output,
)
from dockyard.domain.containers.compose_doc import container_name
from dockyard.domain.models import LiveState, Status
from dockyard.domain.ports import (
    ContainerProcess,
    EngineEvent,
    LogQuery,
    ManagedContainer,
    ResourceSample,
)
from dockyard.errors import (
    DeadlineError,
    EngineError,
    EngineUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
)

log = structlog.get_logger("dockyard.engine")

MANAGED = "dockyard.managed=true"
# aiodocker reports "cannot connect" as a made-up HTTP status.
_AIODOCKER_CONNECT_FAILED = 900
_ZERO_TIME = "0001-01-01T00:00:00Z"


class _Missing(Exception):
    """The engine answered 404."""


class DockerEngine:
    """``Engine`` over the Docker Engine API."""

    def __init__(self, url: str | None, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._docker: aiodocker.Docker | None = None

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._url)
        return self._docker

    async def _json(
        self,
        path: str,
        method: str = "GET",
        *,
        params: dict[str, Any] | None = None,
        data: Any = None,
    ) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._client()._query_json(path, method, params=params, data=data)
        except TimeoutError:
            raise DeadlineError(
                f"the engine did not answer {method} {path} in time", code="ENGINE_TIMEOUT"
            ) from None
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                raise _Missing(path) from exc
            if exc.status == _AIODOCKER_CONNECT_FAILED:
                raise EngineUnavailableError("the Docker engine cannot be reached") from exc
            raise EngineError(
                f"the engine refused {method} {path}: {exc.message}",
                details={"engine_status": exc.status},
            ) from exc
        except aiohttp.ClientError as exc:
            raise EngineUnavailableError("the Docker engine cannot be reached") from exc

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    async def version(self) -> str:
        info = await self._json("version")
        return str(info.get("Version", "unknown"))

    async def inspect(self, cuid: str) -> LiveState | None:
        try:
            data = await self._json(f"containers/{container_name(cuid)}/json")
        except _Missing:
            return None
        return live_state(data)

    async def list_managed(self) -> list[ManagedContainer]:
        rows = await self._json(
            "containers/json",
            params={"all": "1", "filters": json.dumps({"label": [MANAGED]})},
        )
        found: list[ManagedContainer] = []
        for row in rows:
            labels = row.get("Labels") or {}
            cuid = labels.get("dockyard.cuid")
            if not cuid:
                continue
            found.append(
                ManagedContainer(
                    cuid=cuid,
                    labels=labels,
                    status=_status(row.get("State", "")),
                    image=row.get("Image", ""),
                    project_dir=labels.get("com.docker.compose.project.working_dir"),
                )
            )
        return found

    async def image_exists(self, ref: str) -> bool:
        try:
            await self._json(f"images/{ref}/json")
        except _Missing:
            return False
        return True

    async def ensure_network(self, name: str) -> None:
        """One shared bridge, inter-container traffic off (SPEC §1)."""
        try:
            await self._json(f"networks/{name}")
            return
        except _Missing:
            pass
        config = {
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": True,
            "Options": {"com.docker.network.bridge.enable_icc": "false"},
            "Labels": {"dockyard.managed": "true"},
        }
        try:
            await self._json("networks/create", "POST", data=config)
        except EngineError as exc:
            if "already exists" not in exc.message:
                raise

    async def changes(self, cuid: str) -> list[dict[str, Any]]:
        try:
            rows = await self._json(f"containers/{container_name(cuid)}/changes")
        except _Missing:
            raise NotFoundError(
                "the container is gone from the engine", code="CONTAINER_MISSING"
            ) from None
        return list(rows or [])

    async def archive_stat(self, cuid: str, path: str) -> dict[str, Any] | None:
        """The engine's stat of a path in the container (HEAD on the archive endpoint)."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client()._query(
                    f"containers/{container_name(cuid)}/archive",
                    method="HEAD",
                    params={"path": path},
                ) as response:
                    raw = response.headers.get("X-Docker-Container-Path-Stat", "")
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc) from exc
        except TimeoutError:
            raise DeadlineError(
                "the engine did not answer in time", code="ENGINE_TIMEOUT"
            ) from None
        try:
            stat: dict[str, Any] = json.loads(base64.b64decode(raw))
        except ValueError:
            return None
        return stat

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        """Stream the engine's tar of ``path`` into ``dest``, at most ``limit`` bytes."""
        written = 0
        try:
            async with self._client()._query(
                f"containers/{container_name(cuid)}/archive",
                params={"path": path},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self._timeout),
            ) as response:
                with dest.open("wb") as handle:
                    async for chunk in response.content.iter_chunked(1024 * 1024):
                        written += len(chunk)
                        if written > limit:
                            raise PayloadTooLargeError(
                                f"{path} holds more than {limit} bytes",
                                code="DOWNLOAD_TOO_LARGE",
                                details={"limit": limit},
                            )
                        await asyncio.to_thread(handle.write, chunk)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"{path} does not exist in the container",
                    code="PATH_NOT_FOUND",
                    details={"path": path},
                ) from exc
            raise self._translate(exc) from exc
        except aiohttp.ClientError as exc:
            raise EngineUnavailableError("the engine's archive stream broke") from exc

    # -- interactive streams (adapters/engine/streams.py) -------------------------

    @property
    def is_local(self) -> bool:
        """Host pids of exec sessions are signalable only on a local engine."""
        return self._url is None or self._url.startswith("unix://")

    async def open_exec(
        self, cuid: str, cmd: list[str], *, tty: bool, cols: int, rows: int, user: str
    ) -> ExecSession:
        return await open_exec(
            self._client(),
            container_name(cuid),
            cmd,
            tty=tty,
            cols=cols,
            rows=rows,
            user=user,
            deadline=self._timeout,
            local=self.is_local,
        )

    async def open_attach(self, cuid: str) -> AttachSession:
        return await open_attach(self._client(), container_name(cuid), deadline=self._timeout)

    async def recent_output(self, cuid: str, max_bytes: int) -> bytes:
        return await recent_output(
            self._client(), container_name(cuid), max_bytes, deadline=self._timeout
        )

    @staticmethod
    def _translate(exc: aiodocker.DockerError) -> EngineError:
        if exc.status == _AIODOCKER_CONNECT_FAILED:
            return EngineUnavailableError("the Docker engine cannot be reached")
        return EngineError(
            f"the engine refused: {exc.message}", details={"engine_status": exc.status}
        )

    async def stream_events(self) -> AsyncIterator[EngineEvent]:
        params = {"filters": json.dumps({"type": ["container"], "label": [MANAGED]})}
        try:
            async with self._client()._query(
                "events", params=params, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
            ) as response:
                # The stream is open: say so (an event without a cuid), so that readers
                # know statuses in the store now follow the engine.
                yield EngineEvent(cuid="", action="connected")
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    attrs = (event.get("Actor") or {}).get("Attributes") or {}
                    cuid = attrs.get("dockyard.cuid")
                    if cuid:
                        yield EngineEvent(
                            cuid=cuid,
                            action=str(event.get("Action", "")),
                            attributes=attrs,
                            time=_event_time(event),
                        )
        except aiodocker.DockerError as exc:
            raise EngineUnavailableError("the engine's event stream failed") from exc
        except aiohttp.ClientError as exc:
            raise EngineUnavailableError("the engine's event stream broke") from exc

    # -- observation: logs, metrics (issue 4) ---------------------------------------

    async def process(self, cuid: str) -> ContainerProcess | None:
        """Id, host pid and TTY of the container (what metrics need to find it)."""
        try:
            data = await self._json(f"containers/{container_name(cuid)}/json")
        except _Missing:
            return None
        state = data.get("State") or {}
        return ContainerProcess(
            container_id=str(data.get("Id", "")),
            pid=int(state.get("Pid") or 0),
            status=_status(state.get("Status", "")),
            tty=bool((data.get("Config") or {}).get("Tty")),
        )

    async def stats_once(self, container_id: str) -> ResourceSample | None:
        """The engine's one-shot stats (slow: the engine gathers them on demand)."""
        try:
            data = await self._json(
                # Spelled out: the engine (20.10) takes only "true" for one-shot.
                f"containers/{container_id}/stats",
                params={"stream": "false", "one-shot": "true"},
            )
        except _Missing:
            return None
        return sample_from_stats(data) if isinstance(data, dict) else None

    async def open_logs(self, cuid: str, query: LogQuery) -> EngineLogStream:
        return await open_logs(self._client(), container_name(cuid), query, deadline=self._timeout)


def _status(raw: str) -> Status:
    try:
        return Status(raw)
    except ValueError:
        return Status.DEAD


def _event_time(event: dict[str, Any]) -> datetime | None:
    nanos = event.get("timeNano")
    if isinstance(nanos, int) and nanos > 0:
        return datetime.fromtimestamp(nanos / 1e9, UTC)
    return None


def _time(raw: str | None) -> datetime | None:
    if not raw or raw.startswith("0001-01-01"):
        return None
    # The engine gives nanoseconds; Python's parser takes at most microseconds.
    head, _, frac = raw.rstrip("Z").partition(".")
    text = head + ("." + frac[:6] if frac else "") + "+00:00"
    return datetime.fromisoformat(text)


def live_state(data: dict[str, Any]) -> LiveState:
    state = data.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    return LiveState(
        status=_status(state.get("Status", "")),
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        started_at=_time(state.get("StartedAt")),
        finished_at=_time(state.get("FinishedAt")),
        restart_count=int(data.get("RestartCount") or 0),
        health=health,
        container_id=data.get("Id"),
    )
