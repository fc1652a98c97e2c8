"""automation (issue 11): activity and timers on containers, host port allocations,
outgoing webhooks and their deliveries, webhook keys and hub deliveries

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("containers", sa.Column("last_activity_at", UTCDateTime))
    op.add_column("containers", sa.Column("idle_timeout", sa.Float))  # seconds; None: never
    op.add_column("containers", sa.Column("expires_at", UTCDateTime))  # ttl; None: never
    op.add_column("containers", sa.Column("checkin_token_hash", sa.String(128)))
    op.add_column("containers", sa.Column("restart_count", sa.Integer))
    op.create_table(
        "port_allocations",  # one host port, one holder: the primary key is the lock
        sa.Column("engine", sa.String(64), primary_key=True),
        sa.Column("host_port", sa.Integer, primary_key=True),
        sa.Column("protocol", sa.String(8), primary_key=True),
        sa.Column("cuid", sa.String(40), nullable=False),
        sa.Column("container_port", sa.Integer, nullable=False),
        sa.Column("replica", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_port_allocations_cuid", "port_allocations", ["cuid"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),  # event type patterns; [] = all
        sa.Column("secret", sa.LargeBinary, nullable=False),  # sealed (adapters/crypto.py)
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_webhooks_owner", "webhooks", ["owner"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),  # X-Dockyard-Delivery
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("event_seq", sa.BigInteger),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),  # the exact JSON that is signed
        sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(255)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_hook", "webhook_deliveries", ["webhook_id", "created_at", "id"]
    )
    op.create_table(
        "webhook_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("image", sa.String(512), nullable=False),  # repository[:tag] it redeploys
        sa.Column("build", sa.JSON),  # a bound build request (secrets removed), or None
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_webhook_keys_owner", "webhook_keys", ["owner"])
    op.create_table(
        "hub_deliveries",  # a replayed delivery does not redeploy twice
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("fingerprint", sa.String(128), primary_key=True),
        sa.Column("job_id", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_deliveries")
    op.drop_table("webhook_keys")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("port_allocations")
    for column in (
        "restart_count",
        "checkin_token_hash",
        "expires_at",
        "idle_timeout",
        "last_activity_at",
    ):
        op.drop_column("containers", column)
