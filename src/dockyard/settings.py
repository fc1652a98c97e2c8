"""Settings, read once from the environment and ``.env`` (SPEC §2).

Nothing below this module reads ``os.environ``: a ``Settings`` is built at the edge
(``cli.py``) and passed down.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_UID_GID = re.compile(r"^\d{1,10}:\d{1,10}\Z")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    app_user: str | None = None
    app_pass: SecretStr | None = None
    default_user_uid: str = "1000:1000"
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("./data")
    log_dir: Path = Path("./logs")
    database_url: str | None = None
    # SQLite's durability: FULL (default) syncs every commit before its answer; NORMAL is
    # faster but may lose the last commits on a power loss (docs/configuration.md).
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    # How long a write waits for a lock another process holds on the SQLite file (a
    # backup, a sqlite3 shell) before it is refused with 503 DATABASE_BUSY.
    sqlite_busy_timeout: float = Field(default=10.0, gt=0, le=600)
    docker_host: str | None = None
    dev_mode: bool = False

    # Beyond SPEC §2: operational knobs with safe defaults (docs/configuration.md).
    compose_bin: Path | None = None
    network_name: str = "dockyard"
    max_concurrency: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1)
    compose_timeout: float = Field(default=120.0, gt=0)
    compose_nice: int = Field(default=0, ge=0, le=19)  # Compose's CPU priority (0 = as ours)
    engine_timeout: float = Field(default=30.0, gt=0)
    stop_timeout: int = Field(default=10, ge=0, le=600)
    reconcile_interval: float = Field(default=60.0, gt=0)
    credential_cache_ttl: float = Field(default=60.0, ge=0)
    login_failures_per_minute: int = Field(default=10, ge=1)
    # Accounts (issue 5): bearer tokens from POST /auth/token, WebSocket origins.
    token_ttl: float = Field(default=3600.0, gt=0)
    token_max_ttl: float = Field(default=7 * 86400.0, gt=0)
    ws_allowed_origins: str = ""  # comma list of extra origins, e.g. https://ui.example.com
    upload_max_bytes: int = Field(default=1024**3, ge=1)
    unpacked_max_bytes: int = Field(default=4 * 1024**3, ge=1)
    archive_max_entries: int = Field(default=100_000, ge=1)
    archive_max_ratio: int = Field(default=200, ge=1)
    download_zip_max_bytes: int = Field(default=4 * 1024**3, ge=1)
    fetch_allow_nets: str = ""  # comma list of CIDRs a create's URLs may reach anyway
    fetch_max_bytes: int = Field(default=1024**3, ge=1)
    fetch_timeout: float = Field(default=300.0, gt=0)
    terminal_sessions_per_user: int = Field(default=20, ge=1)
    terminal_sessions_per_container: int = Field(default=10, ge=1)
    # Observation (issue 4): log follows, the metrics collector, the events table.
    log_follow_per_container: int = Field(default=8, ge=1)
    log_follow_max: int = Field(default=128, ge=1)
    metrics_interval: float = Field(default=1.0, gt=0, le=60)
    metrics_idle: float = Field(default=60.0, gt=0)
    events_max: int = Field(default=100_000, ge=1)
    events_follow_max: int = Field(default=64, ge=1)
    json_body_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Read deadlines of the HTTP server (issue 9: slow clients get 408 and are cut off).
    header_timeout: float = Field(default=10.0, gt=0, le=600)
    body_idle_timeout: float = Field(default=30.0, gt=0, le=3600)
    # An idle keep-alive connection is closed after this; longer than the 5 s after which
    # httpx (the SDK's client) drops its own idle connections, so that a client never
    # sends a request on a connection the server is closing at that very moment.
    keepalive_timeout: int = Field(default=20, ge=1, le=600)
    # Limits of a container created without `resources` (never unlimited; issue 9).
    default_cpus: float = Field(default=1.0, gt=0, le=1024)
    default_memory: str = "512m"
    default_pids: int = Field(default=256, ge=16, le=1_000_000)
    # Host ports below 1024 may be published (SPEC §4 "host access"; off by default).
    host_access: bool = False
    # -- images and builds (SPEC §6) --
    builds_max_running: int = Field(default=2, ge=1, le=64)  # builds and pulls at once
    builds_max_queued: int = Field(default=20, ge=0, le=10_000)  # waiting, past the running
    builds_per_account: int = Field(default=4, ge=1, le=1000)  # queued + running, per account
    build_timeout: float = Field(default=1800.0, gt=0)  # a build's (or pull's) deadline
    push_timeout: float = Field(default=1800.0, gt=0)
    # A pull or push ends when nothing came from the registry for this long.
    registry_idle_timeout: float = Field(default=60.0, gt=0)
    build_network: str = "dockyard-build"  # RUN steps' network: a bridge Dockyard makes, or none
    build_memory: str = "2g"  # memory of a build's RUN containers
    build_cpus: float = Field(default=1.0, gt=0, le=1024)
    build_context_max_bytes: int = Field(default=512 * 1024**2, ge=1)
    build_log_max_bytes: int = Field(default=8 * 1024**2, ge=1024)
    git_allow_http_hosts: str = ""  # comma list of hosts a git build may reach over http
    git_timeout: float = Field(default=300.0, gt=0)
    # -- automation (issue 11) --
    port_range: str = "20000-29999"  # host ports publish_all and "host": null draw from
    public_host: str = "127.0.0.1"  # the host name in a port mapping's ready url
    idle_timeout: float | None = Field(default=None, gt=0)  # default for new containers
    checkin_base_url: str | None = None  # how a workload reaches /check-in (default: derived)
    max_replicas: int = Field(default=10, ge=1, le=1000)  # POST /containers/{cuid}/scale
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)  # one delivery attempt
    webhook_retry_for: float = Field(default=86400.0, gt=0)  # give up after a day
    webhook_max_in_flight: int = Field(default=16, ge=1, le=1000)
    webhook_per_hook: int = Field(default=4, ge=1, le=100)  # in flight to one webhook
    # Retries wait a random time below min(max, base * 2**(attempt - 1)) seconds.
    webhook_backoff_base: float = Field(default=1.0, gt=0)
    webhook_backoff_max: float = Field(default=3600.0, gt=0)
    # -- engines (issue 12) --
    engine_poll_interval: float = Field(default=10.0, gt=0, le=3600)  # the watcher's polls
    # Several processes on one PostgreSQL: a duty's lease lives this long unless renewed
    # (every third of it); a process that ends abruptly hands its duties over after it.
    lease_ttl: float = Field(default=15.0, ge=3, le=600)
    engine_poll_timeout: float = Field(default=5.0, gt=0, le=300)  # one poll's deadline
    # Plain (unencrypted, unauthenticated) tcp:// engines, to a loopback address only.
    engines_allow_plain_tcp: bool = False

    @field_validator("default_user_uid")
    @classmethod
    def _uid_gid(cls, value: str) -> str:
        if not _UID_GID.match(value):
            raise ValueError("must look like uid:gid, e.g. 1000:1000")
        return value

    @field_validator("default_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        from dockyard.domain.models import Resources

        return Resources(memory=value).memory or value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(
            ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")
        ):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("fetch_allow_nets")
    @classmethod
    def _allow_nets(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item.strip()!r} is not a network (e.g. 10.1.0.0/16)"
                    ) from None
        return value

    @model_validator(mode="after")
    def _port_range(self) -> Settings:
        from dockyard.domain.containers.ports import PortRange

        try:
            PortRange.parse(self.port_range, reserved=(2375, 2376, self.port))
        except ValueError as exc:
            raise ValueError(f"PORT_RANGE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.log_dir = self.log_dir.expanduser().resolve()
        return self

    @property
    def uid(self) -> int:
        return int(self.default_user_uid.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.default_user_uid.split(":")[1])

    @property
    def containers_dir(self) -> Path:
        return self.data_dir / "containers"

    @property
    def token_secret_file(self) -> Path:
        """Signs bearer tokens; generated on first start, mode 0600."""
        return self.data_dir / "token-secret"

    @property
    def registry_secret_file(self) -> Path:
        """Encrypts registry credentials at rest; generated on first start, mode 0600."""
        return self.data_dir / "registry-secret"

    @property
    def jobs_dir(self) -> Path:
        """Build and pull logs, and build contexts while they are made."""
        return self.data_dir / "jobs"

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/").lower() for o in self.ws_allowed_origins.split(",") if o.strip()
        )

    @property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with its async driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'dockyard.db'}"
        for prefix, replacement in (
            ("sqlite+aiosqlite:", "sqlite+aiosqlite:"),
            ("sqlite:", "sqlite+aiosqlite:"),
            ("postgresql+asyncpg:", "postgresql+asyncpg:"),
            ("postgresql:", "postgresql+asyncpg:"),
            ("postgres:", "postgresql+asyncpg:"),
        ):
            if url.startswith(prefix):
                return replacement + url[len(prefix) :]
        return url


def describe_error(exc: Exception) -> str:
    """One line naming the bad setting, for start-up failures."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            parts.append(f"{name}: {err['msg']}")
        return "invalid setting " + "; ".join(parts)
    return f"invalid settings: {exc}"
