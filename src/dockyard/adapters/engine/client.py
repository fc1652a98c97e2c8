"""The Docker Engine API behind one choke point.

Plain requests go through ``EngineTransport`` (short calls with a deadline each, streams
with a deadline on their head and per read); exec and attach through aiodocker's public
API (``streams.py``). Every failure is translated once, by ``map_engine_errors``, into
the ``EngineError`` tree; answers are turned into typed values by ``parsing.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import aiodocker
import structlog

from dockyard.adapters.engine.cgroups import sample_from_stats
from dockyard.adapters.engine.errors import map_engine_errors
from dockyard.adapters.engine.logs import EngineLogStream, open_logs
from dockyard.adapters.engine.parsing import (
    changes_of,
    event_of,
    live_state,
    managed_of,
    path_stat_of,
    process_of,
    replicas_of,
)
from dockyard.adapters.engine.streams import (
    SHELL,
    AttachSession,
    ExecSession,
    open_attach,
    open_exec,
    recent_output,
    sized,
)
from dockyard.adapters.engine.transport import EngineTransport, lines_of, stream_of
from dockyard.domain.containers.compose_doc import REPLICA_LABEL, container_name
from dockyard.domain.models import LiveState
from dockyard.domain.ports import (
    Change,
    ContainerProcess,
    EngineEvent,
    LogQuery,
    ManagedContainer,
    PathStat,
    ReplicaState,
    ResourceSample,
)
from dockyard.errors import EngineError, NotFoundError, PayloadTooLargeError

log = structlog.get_logger("dockyard.engine")

MANAGED = "dockyard.managed=true"
_ARCHIVE_CHUNK = 1024 * 1024
_UPLOAD_DEADLINE = 600.0  # an upload's whole body goes before the engine's answer


def _path_missing(path: str) -> NotFoundError:
    return NotFoundError(
        f"{path} does not exist in the container", code="PATH_NOT_FOUND", details={"path": path}
    )


def _container_missing() -> NotFoundError:
    return NotFoundError("the container is gone from the engine", code="CONTAINER_MISSING")


class DockerEngine:
    """``Engine`` over the Docker Engine API."""

    def __init__(
        self,
        url: str | None,
        timeout: float,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local: bool | None = None,
    ) -> None:
        """``ssl_context``: another engine's TLS client (adapters/engine/remote.py);
        ``local``: whether its processes are this host's (default: a unix socket's are)."""
        self._url = url
        self._timeout = timeout
        self._ssl = ssl_context
        self._local = local
        self._transport: EngineTransport | None = None

    def _http(self) -> EngineTransport:
        if self._transport is None:
            docker = aiodocker.Docker(url=self._url, ssl_context=self._ssl)
            self._transport = EngineTransport(docker, self._timeout)
        return self._transport

    def _client(self) -> aiodocker.Docker:
        return self._http().docker

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.docker.close()
            self._transport = None

    async def _target(self, cuid: str, replica: int = 1) -> str:
        """The container (name or id) of a replica; a swarm engine's is its task's."""
        return container_name(cuid, replica)

    async def version(self) -> str:
        info = await self._http().call("GET", "version")
        return str(info.get("Version", "unknown"))

    async def inspect(self, cuid: str) -> LiveState | None:
        data = await self._http().call(
            "GET", f"containers/{await self._target(cuid)}/json", missing_ok=True
        )
        return None if data is None else live_state(data)

    async def list_managed(self) -> list[ManagedContainer]:
        rows = await self._http().call(
            "GET",
            "containers/json",
            params={"all": "1", "filters": json.dumps({"label": [MANAGED]})},
        )
        return managed_of(rows or [])

    async def list_replicas(self, cuid: str) -> list[ReplicaState]:
        """Every replica of ``cuid`` (one list call; scale, issue 11)."""
        rows = await self._http().call(
            "GET",
            "containers/json",
            params={"all": "1", "filters": json.dumps({"label": [f"dockyard.cuid={cuid}"]})},
        )
        return replicas_of(rows or [], cuid)

    async def replicas_of_many(self, cuids: Collection[str]) -> dict[str, list[ReplicaState]]:
        """Replicas 2..N of each of ``cuids``, in one list call (a page of containers)."""
        rows = await self._http().call(
            "GET",
            "containers/json",
            params={"all": "1", "filters": json.dumps({"label": [MANAGED, REPLICA_LABEL]})},
        )
        by_cuid: dict[str, list[dict[str, Any]]] = {cuid: [] for cuid in cuids}
        for row in rows or []:
            owner = (row.get("Labels") or {}).get("dockyard.cuid")
            if owner in by_cuid:
                by_cuid[owner].append(row)
        return {cuid: replicas_of(found, cuid) for cuid, found in by_cuid.items()}

    async def image_exists(self, ref: str) -> bool:
        found = await self._http().call("GET", f"images/{ref}/json", missing_ok=True)
        return found is not None

    async def ensure_network(self, name: str) -> None:
        """One shared bridge, inter-container traffic off (SPEC §1)."""
        await self.make_network(
            name, "bridge", Options={"com.docker.network.bridge.enable_icc": "false"}
        )

    async def make_network(self, name: str, driver: str, **config: Any) -> None:
        """Dockyard's network ``name`` of ``driver`` (made once; ``config``: more of the
        engine's network fields)."""
        if await self._http().call("GET", f"networks/{name}", missing_ok=True) is not None:
            return
        body = {
            "Name": name,
            "Driver": driver,
            "CheckDuplicate": True,
            "Labels": {"dockyard.managed": "true"},
            **config,
        }
        try:
            await self._http().call("POST", "networks/create", body=body)
        except EngineError as exc:
            if "already exists" not in exc.message:
                raise

    async def changes(self, cuid: str) -> list[Change]:
        rows = await self._http().call(
            "GET", f"containers/{await self._target(cuid)}/changes", not_found=_container_missing
        )
        return changes_of(rows)

    async def archive_stat(self, cuid: str, path: str, *, replica: int = 1) -> PathStat | None:
        """The engine's stat of a path in the container (HEAD on the archive endpoint)."""
        response = await self._http().head(
            f"containers/{await self._target(cuid, replica)}/archive", params={"path": path}
        )
        if response is None:
            return None
        return path_stat_of(response.headers.get("X-Docker-Container-Path-Stat", ""))

    async def archive_to(self, cuid: str, path: str, dest: Path, limit: int) -> None:
        """Stream the engine's tar of ``path`` into ``dest``, at most ``limit`` bytes."""

        http = self._http()
        response = await http.open(
            f"containers/{await self._target(cuid)}/archive",
            what="the archive request",
            params={"path": path},
            read_timeout=http.timeout,
            not_found=lambda: _path_missing(path),
        )
        written = 0
        try:
            with dest.open("wb") as handle:
                async for chunk in stream_of(response, "archive", _ARCHIVE_CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise PayloadTooLargeError(
                            f"{path} holds more than {limit} bytes",
                            code="DOWNLOAD_TOO_LARGE",
                            details={"limit": limit},
                        )
                    await asyncio.to_thread(handle.write, chunk)
        finally:
            response.close()

    async def put_archive(
        self, cuid: str, path: str, tar: Path | bytes | AsyncIterator[bytes]
    ) -> None:
        """Extract the tar (a file, bytes, or a stream) ``tar`` into the container's
        ``path`` (a folder that exists); works on created and stopped containers too."""

        http = self._http()
        with contextlib.ExitStack() as stack:
            body = stack.enter_context(tar.open("rb")) if isinstance(tar, Path) else tar
            response = await http.open(
                f"containers/{await self._target(cuid)}/archive",
                what="the archive upload",
                method="PUT",
                params={"path": path, "noOverwriteDirNonDir": "true"},
                data=body,
                headers={"Content-Type": "application/x-tar"},
                read_timeout=http.timeout,
                head_timeout=max(http.timeout, _UPLOAD_DEADLINE),
                not_found=lambda: _path_missing(path),
            )
        response.close()

    # -- interactive streams (adapters/engine/streams.py) -------------------------

    @property
    def is_local(self) -> bool:
        """Host pids of exec sessions are signalable only on a local engine."""
        if self._local is not None:
            return self._local
        return self._url is None or self._url.startswith("unix://")

    async def open_exec(
        self,
        cuid: str,
        cmd: list[str],
        *,
        tty: bool,
        cols: int,
        rows: int,
        user: str,
        replica: int = 1,
    ) -> ExecSession:
        if tty and await self.archive_stat(cuid, SHELL, replica=replica) is not None:
            cmd = sized(cmd, cols, rows)
        return await open_exec(
            self._client(),
            await self._target(cuid, replica),
            cmd,
            tty=tty,
            cols=cols,
            rows=rows,
            user=user,
            deadline=self._timeout,
            local=self.is_local,
        )

    async def open_attach(self, cuid: str, *, replica: int = 1) -> AttachSession:
        name = await self._target(cuid, replica)
        return await open_attach(self._client(), name, deadline=self._timeout)

    async def recent_output(self, cuid: str, max_bytes: int, *, replica: int = 1) -> bytes:
        return await recent_output(self._http(), await self._target(cuid, replica), max_bytes)

    async def stream_events(self) -> AsyncIterator[EngineEvent]:
        params = {"filters": json.dumps({"type": ["container"], "label": [MANAGED]})}
        response = await self._http().open(
            "events", what="the events request", params=params, read_timeout=None
        )
        try:
            # The stream is open: say so (an event without a cuid), so that readers
            # know statuses in the store now follow the engine.
            yield EngineEvent(cuid="", action="connected")
            async for line in lines_of(response, "event"):
                if not line.strip():
                    continue
                with map_engine_errors("an event"):
                    event = event_of(json.loads(line))
                if event is not None:
                    yield event
        finally:
            response.close()

    # -- observation: logs, metrics (issue 4) ---------------------------------------

    async def process(self, cuid: str, *, replica: int = 1) -> ContainerProcess | None:
        """Id, host pid and TTY of the container (what metrics need to find it)."""
        data = await self._http().call(
            "GET", f"containers/{await self._target(cuid, replica)}/json", missing_ok=True
        )
        return None if data is None else process_of(data)

    async def stats_once(self, container_id: str) -> ResourceSample | None:
        """The engine's one-shot stats (slow: the engine gathers them on demand)."""
        data = await self._http().call(
            "GET",
            f"containers/{container_id}/stats",
            # Spelled out: the engine (20.10) takes only "true" for one-shot.
            params={"stream": "false", "one-shot": "true"},
            missing_ok=True,
        )
        return sample_from_stats(data) if isinstance(data, dict) else None

    async def open_logs(self, cuid: str, query: LogQuery, *, replica: int = 1) -> EngineLogStream:
        return await open_logs(self._http(), await self._target(cuid, replica), query)
