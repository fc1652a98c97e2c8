"""Table definitions. Changing one means a new Alembic revision in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in and out; SQLite forgets the zone, so it is put back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("password_changed", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Quotas (0002); NULL is unlimited.
    Column("quota_containers", Integer),
    Column("quota_cpus", Float),
    Column("quota_memory", String(32)),
    Column("quota_upload_bytes", BigInteger),
)

containers = Table(
    "containers",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("cuid", String(40), nullable=False, unique=True),
    Column("owner", String(64), nullable=False),
    Column("image", String(255), nullable=False),
    Column("name", String(64)),
    # ",a,b," so that one tag can be matched with LIKE on every database.
    Column("tags_text", Text, nullable=False, default=","),
    # ",8080/tcp,9000/udp," so that a host port can be found with LIKE.
    Column("host_ports", Text, nullable=False, default=","),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("engine", String(64), nullable=False, default="local"),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # automation (0006): activity and timers
    Column("last_activity_at", UTCDateTime),
    Column("idle_timeout", Float),  # seconds; None: never stopped for idleness
    Column("expires_at", UTCDateTime),  # ttl; None: never deleted for age
    Column("checkin_token_hash", String(128)),
    Column("restart_count", Integer),
    # placement (0011): the create's label constraints; null: none
    Column("constraints", JSON),
    Index("ix_containers_owner_seq", "owner", "seq"),
    Index("ix_containers_status_seq", "status", "seq"),
    Index("ix_containers_engine", "engine", "status"),  # 0007
)

# -- accounts, roles, keys, tokens, audit (0002) -------------------------------------

# A 64-bit sequence on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit.
AuditSeq = BigInteger().with_variant(Integer(), "sqlite")

roles = Table(
    "roles",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("permissions", JSON, nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("created_by", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
)

service_keys = Table(
    "service_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "owner",
        String(64),
        ForeignKey("accounts.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("role", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    Index("ix_service_keys_owner", "owner"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "owner",
        String(64),
        ForeignKey("accounts.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scope", JSON),
    Column("key_id", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_tokens_owner", "owner"),
    Index("ix_tokens_key_id", "key_id"),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", AuditSeq, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("username", String(64), nullable=False),
    Column("credential", String(64), nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource", String(128)),
    Column("request_id", String(128)),
    Column("status", Integer, nullable=False),
    Column("source", String(64)),
    Index("ix_audit_username_seq", "username", "seq"),
    Index("ix_audit_action_seq", "action", "seq"),
    Index("ix_audit_resource_seq", "resource", "seq"),
    Index("ix_audit_at", "at"),
)

# -- events (0003): what happened to containers, newest kept ---------------------------

events = Table(
    "events",
    metadata,
    # AUTOINCREMENT on SQLite: a seq is never reused after a trim (clients resume by it).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("time", UTCDateTime, nullable=False),
    Column("type", String(32), nullable=False),
    Column("source", String(16), nullable=False),
    Column("cuid", String(40)),
    Column("owner", String(64)),
    Column("actor", String(64)),
    Column("details", JSON, nullable=False),
    Index("ix_events_cuid_seq", "cuid", "seq"),
    Index("ix_events_owner_seq", "owner", "seq"),
    Index("ix_events_type_seq", "type", "seq"),
    Index("ix_events_time", "time"),
    sqlite_autoincrement=True,
)

# -- idempotency keys (0004): the first answer to a create, replayed to its retries -----

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("route", String(255), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("state", String(8), nullable=False),  # pending | done
    Column("instance", String(32), nullable=False),
    Column("status", Integer),
    Column("content_type", String(128)),
    Column("body", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_created_at", "created_at"),
)

# -- jobs and registries (0005): builds and pulls, registry credentials ------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),  # build | pull | redeploy
    Column("owner", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("step", Integer),
    Column("total_steps", Integer),
    Column("image_id", String(128)),
    Column("digest", String(160)),
    Column("tags", JSON, nullable=False),
    Column("spec", JSON, nullable=False),  # the request, secrets removed
    Column("progress", JSON, nullable=False),  # per layer, for pulls and pushes
    Column("error", JSON),  # {"kind", "code", "message", "step"}
    Column("instance", String(32), nullable=False),  # the process that runs it
    Column("result", JSON),  # a redeploy's containers (0007)
    Index("ix_jobs_owner_created", "owner", "created_at", "id"),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_created", "created_at", "id"),
)

registries = Table(
    "registries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("shared", Boolean, nullable=False),  # an admin's, usable by everyone
    Column("server", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("secret", LargeBinary, nullable=False),  # encrypted password or token
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_registries_owner", "owner", "server"),
)

# -- automation (0006): host port allocations, webhooks out and in ----------------------

port_allocations = Table(
    "port_allocations",  # one host port, one holder: the primary key is the lock
    metadata,
    Column("engine", String(64), primary_key=True),
    Column("host_port", Integer, primary_key=True),
    Column("protocol", String(8), primary_key=True),
    Column("cuid", String(40), nullable=False),
    Column("container_port", Integer, nullable=False),
    Column("replica", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_port_allocations_cuid", "cuid"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", JSON, nullable=False),  # event type patterns; [] = all
    Column("secret", LargeBinary, nullable=False),  # sealed (adapters/crypto.py)
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhooks_owner", "owner"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # X-Dockyard-Delivery
    Column("webhook_id", String(40), nullable=False),
    Column("event_seq", BigInteger),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON that is signed
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_hook", "webhook_id", "created_at", "id"),
)

webhook_keys = Table(
    "webhook_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("image", String(512), nullable=False),  # repository[:tag] it redeploys
    Column("build", JSON),  # a bound build request (secrets removed), or None
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhook_keys_owner", "owner"),
)

hub_deliveries = Table(
    "hub_deliveries",  # a replayed delivery does not redeploy twice
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("fingerprint", String(128), primary_key=True),
    Column("job_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- engines (0007) ----------------------------------------------------------------------

engines = Table(
    "engines",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("addr", String(512), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # local | remote | swarm
    Column("labels", JSON, nullable=False),
    Column("cpus", Float),  # declared capacity; None: what the engine reports
    Column("memory", BigInteger),  # bytes; likewise
    Column("tls", LargeBinary),  # sealed TLS client files, never the PEM itself
    Column("draining", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # An admin's switch: containers here may ask for host access (migration 0010).
    Column("host_access", Boolean, nullable=False, server_default=false()),
)

# Leases (issue 12): several Dockyard processes on one PostgreSQL; the duties that must
# run once (an engine's follower and reconcile, the timers, webhook deliveries) run in
# the process that holds their lease, renewed well before it expires.
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),  # engine:<id>, deliveries, instance:<id>
    Column("holder", String(64), nullable=False),  # the process (its instance id)
    Column("expires_at", UTCDateTime, nullable=False),
)
