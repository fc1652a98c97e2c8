"""accounts and containers

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("password_changed", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "containers",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cuid", sa.String(40), nullable=False, unique=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("image", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("tags_text", sa.Text, nullable=False),
        sa.Column("host_ports", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("engine", sa.String(64), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
    )
    op.create_index("ix_containers_owner_seq", "containers", ["owner", "seq"])
    op.create_index("ix_containers_status_seq", "containers", ["status", "seq"])


def downgrade() -> None:
    op.drop_table("containers")
    op.drop_table("accounts")
