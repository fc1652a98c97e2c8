"""Data the domain works with: what a client asks for and what the store keeps."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
)

_MEMORY = re.compile(r"^\d+(\.\d+)?[bkmgBKMG]?\Z")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}\Z")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*\Z")
_LABEL_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,127}\Z")
_IMAGE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-/:@]{0,254}\Z")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}\Z")
# Limits on what a spec may carry (issue 9; docs/api.md "Limits").
MAX_ENV = 512
MAX_ENV_VALUE = 64 * 1024
MAX_ENV_TOTAL = 256 * 1024
MAX_LABELS = 128
MAX_LABEL_VALUE = 4096
CUID = re.compile(r"^c[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")

# Labels that Dockyard owns; a client may not set them.
RESERVED_LABEL_PREFIXES = ("dockyard.", "com.docker.")


def new_cuid() -> str:
    return "c" + str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    CREATING = "creating"  # record written, Compose not done yet (never seen after a reconcile)
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"
    REMOVING = "removing"
    MISSING = "missing"  # the record's container vanished from the engine
    FAILED = "failed"  # an interrupted create that could not be completed


# Compose's `restart:` values; on-failure may cap its retries (on-failure:5).
RESTART = re.compile(r"no|always|unless-stopped|on-failure(:[1-9][0-9]{0,5})?")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Resources(_Strict):
    # Strict numbers: a JSON true is not 1 (issue 9, schemathesis).
    cpus: StrictFloat | None = Field(default=None, gt=0, le=1024)
    memory: str | None = Field(default=None, description='e.g. "512m", "4g"')
    pids: StrictInt | None = Field(default=None, ge=16, le=1_000_000)

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _MEMORY.match(value):
            raise ValueError('memory must look like "512m", "4g" or a byte count')
        if memory_bytes(value) < 6 * 1024 * 1024:
            raise ValueError("memory must be at least 6m (the engine's minimum)")
        return value.lower()

    def filled(self, defaults: Resources) -> Resources:
        """These limits, with ``defaults`` where none was given (never unlimited)."""
        return Resources(
            cpus=self.cpus if self.cpus is not None else defaults.cpus,
            memory=self.memory if self.memory is not None else defaults.memory,
            pids=self.pids if self.pids is not None else defaults.pids,
        )


def memory_bytes(value: str) -> int:
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    unit = value[-1].lower()
    if unit in units:
        return int(float(value[:-1]) * units[unit])
    return int(float(value))


class Port(_Strict):
    host: StrictInt | None = Field(default=None, ge=1, le=65535)
    container: StrictInt = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"


Env = dict[str, str]


_HOST_PATH = re.compile(r"^/[^\0\n]{0,4095}\Z")
_CAPABILITY = re.compile(r"^[A-Z][A-Z_]{1,31}\Z")


def _absolute(value: str, what: str) -> str:
    if not _HOST_PATH.match(value) or any(part in ("..", ".") for part in value.split("/")):
        raise ValueError(f"{what} must be an absolute path without '.' or '..'")
    return value.rstrip("/") or "/"


class HostBind(_Strict):
    """A host path mounted into the container (host access)."""

    source: str = Field(description="an absolute path on the engine's host")
    target: str = Field(description="where it appears in the container (not /app)")
    read_only: bool = True

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _absolute(value, "source")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        value = _absolute(value, "target")
        if value == "/" or value == "/app" or value.startswith("/app/"):
            raise ValueError("target may not be / nor /app (nor below it)")
        return value


class HostAccess(_Strict):
    """What only an admin may ask for, and only on an engine whose ``host_access`` an
    admin turned on (docs/engines.md): each is given exactly as asked, nothing more."""

    privileged: bool = False
    binds: list[HostBind] = Field(default_factory=list, max_length=32)
    devices: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=32, description="host devices, e.g. /dev/fuse"
    )
    cap_add: list[str] = Field(
        default_factory=list, max_length=40, description="capabilities, e.g. NET_ADMIN"
    )

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[str]) -> list[str]:
        for device in value:
            if not device.startswith("/dev/") or _absolute(device, "a device") != device:
                raise ValueError("a device is an absolute path below /dev/")
        return value

    @field_validator("cap_add")
    @classmethod
    def _caps(cls, value: list[str]) -> list[str]:
        for cap in value:
            if not _CAPABILITY.match(cap):
                raise ValueError("a capability is its name in capitals, e.g. NET_ADMIN")
        return value

    @property
    def asked(self) -> bool:
        return bool(self.privileged or self.binds or self.devices or self.cap_add)


class ContainerSpec(_Strict):
    """What a client may ask for when it creates a container (SPEC §4)."""

    image: Annotated[str, Field(min_length=1, max_length=255)]
    name: str | None = None
    command: str | list[str] | None = None
    env: Env = Field(default_factory=dict)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64
    )
    labels: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    ports: list[Port] = Field(default_factory=list, max_length=64)
    restart: str = Field(default="no", description="no | always | unless-stopped | on-failure[:N]")
    network: Literal["default", "none"] = "default"
    publish_all: bool = Field(
        default=False, description="publish every port the image exposes on a free host port"
    )
    host: HostAccess | None = Field(
        default=None,
        description="host access (admins only, on an engine that allows it): privileged, "
        "host paths, devices, added capabilities",
    )
    auto_remove: bool = Field(
        default=False,
        description="removed by the service once its main process has exited (its exit"
        " code readable until then); only with restart 'no'",
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not _IMAGE.match(value):
            raise ValueError("not a valid image reference")
        _, at, digest = value.partition("@")
        if at and not _DIGEST.match(digest):
            raise ValueError("not a valid image digest (e.g. @sha256:<64 hex digits>)")
        return value

    @field_validator("restart")
    @classmethod
    def _restart(cls, value: str) -> str:
        if not RESTART.fullmatch(value):
            raise ValueError("restart must be no, always, unless-stopped or on-failure[:N]")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("name: letters, digits, '_', '.', '-'; at most 63 characters")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: Env) -> Env:
        if len(value) > MAX_ENV:
            raise ValueError(f"at most {MAX_ENV} env variables")
        if sum(len(k) + len(v) for k, v in value.items()) > MAX_ENV_TOTAL:
            raise ValueError(f"env is larger than {MAX_ENV_TOTAL // 1024} KiB in all")
        for key, val in value.items():
            if len(val) > MAX_ENV_VALUE:
                raise ValueError(f"env value of {key!r} is over {MAX_ENV_VALUE // 1024} KiB")
            if not _ENV_KEY.match(key):
                raise ValueError(f"env key {key!r} is not a valid variable name")
            if key in ("CONTAINER_UID", "TAGS"):
                raise ValueError(f"env key {key!r} is set by Dockyard")
            if "\x00" in val:
                raise ValueError(f"env value of {key!r} contains NUL")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if "," in tag or any(ch.isspace() for ch in tag):
                raise ValueError(f"tag {tag!r} may not contain commas or spaces")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels")
        for key, val in value.items():
            if not _LABEL_KEY.match(key) or key.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(f"label {key!r} is not allowed")
            if len(val) > MAX_LABEL_VALUE:
                raise ValueError(f"label {key!r}: value over {MAX_LABEL_VALUE} characters")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("command may not be an empty list")
        if isinstance(value, str) and not value.strip():
            raise ValueError("command may not be empty")
        return value

    @field_validator("auto_remove")
    @classmethod
    def _auto_remove(cls, value: bool, info: ValidationInfo) -> bool:
        # restart is declared before auto_remove, so it is validated (or failed) already.
        if value and info.data.get("restart", "no") != "no":
            raise ValueError("auto_remove needs restart 'no' (a restarted container never ends)")
        return value


class ContainerRecord(BaseModel):
    """A container as the store keeps it: the spec asked for plus the last known state."""

    cuid: str
    seq: int = 0
    owner: str
    spec: ContainerSpec
    engine: str = "local"
    status: Status = Status.CREATING
    exit_code: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    restart_count: int | None = None  # the engine's RestartCount when last seen
    # Timers and activity (issue 11, domain/automation/).
    last_activity_at: datetime | None = None
    idle_timeout: float | None = None  # seconds; None: never stopped for idleness
    expires_at: datetime | None = None  # None: never deleted for age
    checkin_token_hash: str | None = Field(default=None, repr=False)
    # Scale (issue 11, domain/containers/scaling.py): how many replicas run, and the
    # host ports of replicas 2..N (replica 1's are the spec's ``ports``).
    replicas: int = 1
    replica_ports: dict[int, list[Port]] = Field(default_factory=dict)
    # Placement (issue 12): the create's label constraints, kept (a swarm engine turns
    # them into node.labels constraints, domain/containers/swarm_doc.py).
    constraints: dict[str, str] = Field(default_factory=dict)


class LiveState(BaseModel):
    """What the engine says about a container right now."""

    status: Status
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    health: str | None = None
    container_id: str | None = None
    image_id: str | None = None  # the image it runs (sha256:…)
    replicas: int = 1
    # Why it does not run, when the engine says (a swarm task's "no suitable node"):
    # the record's ``error``; "" clears it; None: this engine does not say.
    detail: str | None = None


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


class Account(BaseModel):
    username: str
    role: str  # a built-in Role's value or a custom role's name
    password_hash: str = Field(repr=False)
    password_changed: bool = False
    created_at: datetime = Field(default_factory=utcnow)
