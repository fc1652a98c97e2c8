"""One engine's own Engine API client, as the engine watcher polls it.

Each engine of the registry gets its own ``aiodocker.Docker`` (its socket, its TLS
context, or aiodocker's ssh transport) behind an ``EngineTransport``, so its requests
have the same deadlines and the same one mapping of failures as the local engine's.

TLS: Python's ``ssl`` loads a client certificate and key from files only, so the opened
PEM texts are written to a private temporary folder (0700, files 0600), loaded, and
removed at once; the key is on disk for the few microseconds of ``load_cert_chain``.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiodocker

from dockyard.adapters.engine.transport import EngineTransport
from dockyard.domain.engines.models import EngineFacts, EngineRecord, TlsFiles
from dockyard.domain.ports import Engine
from dockyard.errors import EngineUnavailableError


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts ``tls.ca`` only and presents ``tls.cert``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=tls.ca)
    with tempfile.TemporaryDirectory(prefix="dockyard-tls-") as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        for path, text in ((cert, tls.cert), (key, tls.key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        context.load_cert_chain(cert, key)
    return context


def facts_of(version: dict[str, Any], info: dict[str, Any]) -> EngineFacts:
    swarm = info.get("Swarm") or {}
    return EngineFacts(
        engine_id=str(info.get("ID", "")),
        version=str(version.get("Version", "unknown")),
        api_version=str(version.get("ApiVersion", "")),
        os=str(info.get("OSType", "")),
        cpus=int(info.get("NCPU") or 0),
        memory=int(info.get("MemTotal") or 0),
        containers_running=int(info.get("ContainersRunning") or 0),
        containers_paused=int(info.get("ContainersPaused") or 0),
        containers_stopped=int(info.get("ContainersStopped") or 0),
        images=int(info.get("Images") or 0),
        swarm=str(swarm.get("LocalNodeState") or "inactive"),
    )


class DockerProbe:
    """``EngineProbe`` over the engine's own Engine API client (built on first use)."""

    def __init__(self, record: EngineRecord, tls: TlsFiles | None, timeout: float) -> None:
        self._addr = record.addr
        self._tls = tls
        self._timeout = timeout
        self._transport: EngineTransport | None = None

    def _http(self) -> EngineTransport:
        if self._transport is None:
            url, tls = self._addr, self._tls
            if url.startswith("tcp://"):
                url = f"{'https' if tls else 'http'}://{url.removeprefix('tcp://')}"
            try:
                context = tls_context(tls) if tls is not None else None
                docker = aiodocker.Docker(url=url, ssl_context=context)
            except (ImportError, ValueError, ssl.SSLError) as exc:
                # A key that does not fit its certificate, a CA that is no PEM, no ssh.
                raise EngineUnavailableError(
                    f"no client for {self._addr}: {exc}", code="ENGINE_CLIENT_FAILED"
                ) from exc
            self._transport = EngineTransport(docker, self._timeout)
        return self._transport

    async def probe(self) -> EngineFacts:
        http = self._http()
        version = await http.call("GET", "version")
        info = await http.call("GET", "info")
        return facts_of(version or {}, info or {})

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.docker.close()
            self._transport = None


class VersionProbe:
    """``EngineProbe`` of an ``Engine`` port that only tells its version (a fake engine
    in tests): capacity and counts read zero."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def probe(self) -> EngineFacts:
        version = await self._engine.version()
        return EngineFacts("", version, "", "", 0, 0, 0, 0, 0, 0)

    async def close(self) -> None:
        return None
