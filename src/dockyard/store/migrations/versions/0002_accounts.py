"""accounts: quotas, custom roles, service keys, tokens, audit trail

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("quota_containers", sa.Integer))
        batch.add_column(sa.Column("quota_cpus", sa.Float))
        batch.add_column(sa.Column("quota_memory", sa.String(32)))
        batch.add_column(sa.Column("quota_upload_bytes", sa.BigInteger))
    op.create_table(
        "roles",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "service_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner",
            sa.String(64),
            sa.ForeignKey("accounts.username", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("last_used_at", UTCDateTime),
    )
    op.create_index("ix_service_keys_owner", "service_keys", ["owner"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "owner",
            sa.String(64),
            sa.ForeignKey("accounts.username", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scope", sa.JSON),
        sa.Column("key_id", sa.String(32)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
    )
    op.create_index("ix_tokens_owner", "tokens", ["owner"])
    op.create_index("ix_tokens_key_id", "tokens", ["key_id"])
    op.create_table(
        "audit",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(128)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("source", sa.String(64)),
    )
    op.create_index("ix_audit_username_seq", "audit", ["username", "seq"])
    op.create_index("ix_audit_action_seq", "audit", ["action", "seq"])
    op.create_index("ix_audit_resource_seq", "audit", ["resource", "seq"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("tokens")
    op.drop_table("service_keys")
    op.drop_table("roles")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("quota_upload_bytes")
        batch.drop_column("quota_memory")
        batch.drop_column("quota_cpus")
        batch.drop_column("quota_containers")
