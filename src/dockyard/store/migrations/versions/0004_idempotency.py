"""idempotency_keys: the first answer to a create, replayed to its retries for 24 h

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("instance", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.String(128)),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_idempotency_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
