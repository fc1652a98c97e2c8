"""Each engine of the registry gets its own clients (issue 12, domain/engines/routing.py).

``RemoteEngines.open(engine_id)`` builds, from the engine's record and its opened TLS
files: a ``DockerEngine`` on that engine's socket or TLS address (the same transport,
deadlines and error mapping as the local engine's), and a ``CliComposeRunner`` whose
subprocess environment carries that engine's ``DOCKER_HOST`` (and ``DOCKER_TLS_VERIFY``
/ ``DOCKER_CERT_PATH`` naming a private 0700 folder of the PEM files, removed when the
clients are closed). Argv lists as always, no shell.

On such an engine ``/app`` is the container's named volume; a volume starts owned by
root, so right after Compose first creates the project, the volume's root is given to
the containers' user by a one-entry tar (``app/``, that uid:gid, 0755) put at ``/``
through the archive endpoint - before ``start`` when Compose only creates, in the
background right after it when Compose starts too (docs/engines.md).
"""

from __future__ import annotations

import io
import os
import shutil
import ssl
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from dockyard.adapters.compose import CliComposeRunner
from dockyard.adapters.engine.client import DockerEngine
from dockyard.adapters.engine.probe import tls_context
from dockyard.adapters.engine.swarm import SwarmEngine, SwarmStack
from dockyard.domain.engines.models import EngineKind, EngineRecord, TlsFiles
from dockyard.domain.engines.routing import EngineParts
from dockyard.errors import EngineUnavailableError

log = structlog.get_logger("dockyard.engine")

Connection = Callable[[str], Awaitable[tuple[EngineRecord, TlsFiles | None] | None]]
ComposeFactory = Callable[[dict[str, str]], CliComposeRunner]


def api_url(addr: str, tls: bool) -> str:
    """aiodocker's URL of an engine address (``tcp://`` is http or https)."""
    if addr.startswith("tcp://"):
        return f"{'https' if tls else 'http'}://{addr.removeprefix('tcp://')}"
    return addr


def cert_folder(tls: TlsFiles) -> Path:
    """A private folder (0700) with the CLI's ``ca.pem``, ``cert.pem``, ``key.pem`` (0600)."""
    folder = Path(tempfile.mkdtemp(prefix="dockyard-engine-tls-"))
    for name, text in (("ca.pem", tls.ca), ("cert.pem", tls.cert), ("key.pem", tls.key)):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    return folder


def compose_env(addr: str, certs: Path | None) -> dict[str, str]:
    """The Compose CLI's environment for one engine (overrides what the service has)."""
    return {
        "DOCKER_HOST": addr,
        "DOCKER_TLS_VERIFY": "1" if certs is not None else "",
        "DOCKER_CERT_PATH": str(certs) if certs is not None else "",
        "DOCKER_CONTEXT": "",
    }


def owner_tar(uid: int, gid: int) -> bytes:
    """One folder entry, ``app/``, owned by ``uid:gid``: put at ``/``, it chowns /app."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.uid, info.gid = uid, gid
        info.mtime = int(time.time())
        tar.addfile(info)
    return buffer.getvalue()


class VolumeCompose:
    """A remote engine's Compose runner: a project's ``/app`` volume is given to the
    containers' user before anything runs in it.

    A new volume is root's. So the first ``create`` or ``up`` of a project is Compose's
    ``create``, then one tar entry (``app/``, the containers' uid:gid) put at ``/``
    through the archive endpoint, then (for ``up``) Compose's ``start``: the workload's
    first moment already finds ``/app`` writable. That costs one more Compose call and
    an archive PUT on a remote create; the same ``up`` later is one call."""

    def __init__(self, runner: CliComposeRunner, engine: DockerEngine, owner: bytes) -> None:
        self._runner = runner
        self._engine = engine
        self._owner = owner
        self._owned: set[str] = set()

    async def _own(self, project: str) -> None:
        if project not in self._owned:
            await self._engine.put_archive(project, "/", self._owner)
            self._owned.add(project)

    async def write(self, project_dir: Path, document: dict[str, Any]) -> None:
        await self._runner.write(project_dir, document)

    async def create(self, project: str, project_dir: Path) -> None:
        await self._runner.create(project, project_dir)
        await self._own(project)

    async def up(self, project: str, project_dir: Path) -> None:
        if project in self._owned:
            await self._runner.up(project, project_dir)
            return
        await self._runner.create(project, project_dir)
        await self._own(project)
        await self._runner.action(project, project_dir, "start")

    async def action(self, project: str, project_dir: Path, verb: str) -> None:
        await self._runner.action(project, project_dir, verb)

    async def down(self, project: str, project_dir: Path) -> None:
        try:
            await self._runner.down(project, project_dir)
        finally:
            self._owned.discard(project)

    async def version(self) -> str:
        return await self._runner.version()

    async def close(self) -> None:
        """Nothing runs in the background (kept for the parts' close)."""


class RemoteEngines:
    """``PartsFactory``: the clients of the registry's other engines."""

    def __init__(
        self,
        connection: Connection,
        compose: ComposeFactory,
        *,
        timeout: float,
        network: str,
        uid: int,
        gid: int,
        docker: ComposeFactory | None = None,
        docker_bin: str = "docker",
    ) -> None:
        """``docker``: a runner of the ``docker`` CLI (``docker_bin``) for an engine's
        environment, for swarm engines' ``docker stack`` (adapters/engine/swarm.py)."""
        self._connection = connection
        self._docker = docker
        self._docker_bin = docker_bin
        self._compose = compose
        self._timeout = timeout
        self._network = network
        self._owner = owner_tar(uid, gid)
        self._certs: dict[str, Path] = {}

    async def open(self, engine_id: str) -> EngineParts:
        found = await self._connection(engine_id)
        if found is None:
            raise EngineUnavailableError(
                f"engine {engine_id} is not in the registry",
                code="ENGINE_UNKNOWN",
                details={"engine": engine_id},
            )
        record, tls = found
        try:
            context = tls_context(tls) if tls is not None else None
        except (ValueError, ssl.SSLError) as exc:
            raise EngineUnavailableError(
                f"no client for {record.addr}: {exc}", code="ENGINE_CLIENT_FAILED"
            ) from exc
        swarm = record.kind is EngineKind.SWARM and self._docker is not None
        kind = SwarmEngine if swarm else DockerEngine
        url = api_url(record.addr, tls is not None)
        engine = kind(url, self._timeout, ssl_context=context, local=False)
        try:
            if not swarm:  # a swarm's containers are on its overlay network instead
                await engine.ensure_network(self._network)  # the shared bridge, there too
        except BaseException:
            await engine.close()
            raise
        certs = cert_folder(tls) if tls is not None else None
        if certs is not None:
            self._certs[engine_id] = certs
        env = compose_env(record.addr, certs)
        if isinstance(engine, SwarmEngine) and self._docker is not None:
            network = f"{self._network}-swarm"
            stack = SwarmStack(
                self._docker(env),
                engine,
                docker=self._docker_bin,
                network=network,
                owner=self._owner,
                timeout=self._timeout * 4,
            )
            return EngineParts(engine_id, engine, stack, remote=True)
        compose = VolumeCompose(self._compose(env), engine, self._owner)
        return EngineParts(engine_id, engine, compose, remote=True)

    async def close(self, parts: EngineParts) -> None:
        if isinstance(parts.compose, VolumeCompose):
            await parts.compose.close()
        await parts.engine.close()
        certs = self._certs.pop(parts.engine_id, None)
        if certs is not None:
            shutil.rmtree(certs, ignore_errors=True)
