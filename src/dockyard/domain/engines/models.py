"""The engine registry's values: what is stored of an engine, and what is seen of it.

``EngineRecord`` is what an admin declared (its row in ``engines``); ``EngineFacts`` is
what one poll of the engine answered; ``EngineHealth`` is the watcher's latest word on
it. Addresses are checked by ``check_addr`` before anything is stored.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from dockyard.errors import ValidationError

LOCAL = "local"  # the default engine's id: DOCKER_HOST's (or the platform default)
ENGINE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\Z")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\Z", re.IGNORECASE)
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}\Z")
_LOOPBACK = ("localhost",)
MAX_LABELS = 32
MAX_PEM = 64 * 1024


class EngineKind(StrEnum):
    LOCAL = "local"  # on this host: its paths are this host's (uploads may use them)
    REMOTE = "remote"  # elsewhere: reached only through its Engine API
    SWARM = "swarm"  # a Swarm manager (deploys come later)


class EngineStatus(StrEnum):
    HEALTHY = "healthy"
    UNREACHABLE = "unreachable"
    DRAINING = "draining"  # healthy, and takes no new containers


@dataclass(frozen=True)
class TlsFiles:
    """A TLS client's files (PEM): the CA that signed the engine's certificate, ours."""

    ca: str
    cert: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class EngineRecord:
    """An engine as declared. ``tls`` is sealed (never the PEM itself); ``cpus`` and
    ``memory`` (bytes) are the declared capacity, None to use what the engine reports."""

    id: str
    addr: str
    kind: EngineKind
    labels: dict[str, str]
    cpus: float | None
    memory: int | None
    tls: bytes | None
    draining: bool
    created_at: datetime
    updated_at: datetime
    # Containers here may ask for host access (privileged, host paths, devices, added
    # capabilities): off unless an admin turns it on; only admins may ask even then.
    host_access: bool = False

    @property
    def tls_context(self) -> bytes:
        """What the sealed TLS files are bound to: this engine at this address."""
        return f"engine\0{self.id}\0{self.addr}".encode()


@dataclass(frozen=True)
class EngineFacts:
    """One poll's answer: ``/version`` and ``/info``."""

    engine_id: str
    version: str
    api_version: str
    os: str
    cpus: int
    memory: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    images: int
    swarm: str = "inactive"  # the engine's Swarm.LocalNodeState


@dataclass(frozen=True)
class EngineHealth:
    """The watcher's latest word: ``facts`` of the last answer (kept while unreachable)."""

    reachable: bool | None = None  # None: not polled yet
    facts: EngineFacts | None = None
    last_seen: datetime | None = None
    last_error: str | None = None
    checked_at: datetime | None = None


def check_engine_id(value: str) -> str:
    if not ENGINE_ID.match(value):
        raise ValidationError(
            "engine id: lower-case letters, digits, '_', '.', '-'; at most 63 characters",
            code="INVALID_ENGINE_ID",
            details={"field": "id", "provided": value[:80]},
        )
    return value


def _bad_addr(addr: str, why: str) -> ValidationError:
    return ValidationError(
        f"addr {why}",
        code="INVALID_ENGINE_ADDR",
        details={"field": "addr", "provided": addr[:200]},
    )


def _port(addr: str, port: int | None, *, required: bool) -> None:
    if port is None:
        if required:
            raise _bad_addr(addr, "needs a port: tcp://host:2376")
        return
    if not 1 <= port <= 65535:
        raise _bad_addr(addr, "has a port out of 1..65535")


def _host(addr: str, host: str | None) -> str:
    if not host:
        raise _bad_addr(addr, "names no host")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOST.match(host) or len(host) > 253:
        raise _bad_addr(addr, "names an invalid host")
    return host


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_addr(addr: str) -> str:
    """``unix:///abs/path``, ``tcp://host:port`` or ``ssh://user@host[:port]``; Shipyard's
    ``http://host:port`` reads as tcp. Returns the address as stored (lower-case scheme
    and host). TLS rules are the service's (``tcp://`` needs the files)."""
    value = addr.strip()
    if len(value) > 512 or any(ord(c) < 32 for c in value):
        raise _bad_addr(addr, "is too long or holds control characters")
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    if scheme == "http":
        scheme = "tcp"
    if scheme == "unix":
        if not rest.startswith("/") or "/../" in rest + "/" or rest.endswith("/"):
            raise _bad_addr(addr, "must be unix:// and an absolute socket path")
        return f"unix://{rest}"
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        port = parts.port
    except ValueError:
        raise _bad_addr(addr, "is not a valid address") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _bad_addr(addr, "may not carry a path, query or fragment")
    if scheme == "tcp":
        if parts.username or parts.password:
            raise _bad_addr(addr, "may not carry credentials")
        host = _host(addr, parts.hostname)
        _port(addr, port, required=True)
        shown = f"[{host}]" if ":" in host else host
        return f"tcp://{shown}:{port}"
    if scheme == "ssh":
        if parts.password:
            raise _bad_addr(addr, "may not carry a password (use the ssh agent or keys)")
        if not parts.username or not _USER.match(parts.username):
            raise _bad_addr(addr, "needs a user: ssh://user@host[:port]")
        host = _host(addr, parts.hostname)
        _port(addr, port, required=False)
        shown = f"[{host}]" if ":" in host else host
        return f"ssh://{parts.username}@{shown}" + (f":{port}" if port else "")
    raise _bad_addr(addr, "must start with unix://, tcp:// or ssh://")


def host_of(addr: str) -> str:
    """The host of a tcp:// or ssh:// address ('' for unix://)."""
    if addr.startswith("unix://"):
        return ""
    return urlsplit(addr).hostname or ""


def is_label(key: str, value: str) -> bool:
    """An engine label (or a create's constraint on one): a key of letters, digits and
    ``_.:/-`` (at most 63), a value of at most 255 printable characters."""
    return bool(_LABEL_KEY.match(key)) and len(value) <= 255 and all(ord(c) >= 32 for c in value)


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValidationError(
            f"at most {MAX_LABELS} labels",
            code="INVALID_ENGINE_LABELS",
            details={"field": "labels"},
        )
    for key, value in labels.items():
        if not is_label(key, value):
            raise ValidationError(
                "a label is key=value: a key of letters, digits and _.:/- (at most 63), "
                "a value of at most 255 characters",
                code="INVALID_ENGINE_LABELS",
                details={"field": "labels", "provided": key[:80]},
            )
    return dict(labels)


def labels_of_list(items: list[str]) -> dict[str, str]:
    """Shipyard's labels (``["local", "region=eu"]``) as ours: a bare one has value ''."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return check_labels(out)


def check_tls(tls: TlsFiles) -> TlsFiles:
    for name in ("ca", "cert", "key"):
        pem = getattr(tls, name)
        if not pem.lstrip().startswith("-----BEGIN ") or len(pem) > MAX_PEM:
            raise ValidationError(
                f"tls.{name} must be a PEM text (-----BEGIN ...) of at most {MAX_PEM} bytes",
                code="INVALID_ENGINE_TLS",
                details={"field": f"tls.{name}"},
            )
    return tls


@dataclass(frozen=True)
class EngineView:
    """An engine as the API shows it: its record and the watcher's latest word."""

    record: EngineRecord
    health: EngineHealth

    @property
    def status(self) -> EngineStatus:
        if not self.health.reachable:
            return EngineStatus.UNREACHABLE
        return EngineStatus.DRAINING if self.record.draining else EngineStatus.HEALTHY

    @property
    def cpus(self) -> float | None:
        """The declared capacity, else what the engine reports."""
        if self.record.cpus is not None:
            return self.record.cpus
        return float(self.health.facts.cpus) if self.health.facts else None

    @property
    def memory(self) -> int | None:
        if self.record.memory is not None:
            return self.record.memory
        return self.health.facts.memory if self.health.facts else None


@dataclass(frozen=True)
class EngineDraft:
    """What ``POST /engines`` asks for (both its shapes end up here)."""

    addr: str
    id: str | None = None
    kind: EngineKind | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: int | None = None
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class EngineChanges:
    """A PATCH: only the fields named in ``given`` change (a null capacity: the engine's)."""

    given: frozenset[str]
    labels: dict[str, str] | None = None
    cpus: float | None = None
    memory: int | None = None
    draining: bool | None = None
    host_access: bool | None = None
