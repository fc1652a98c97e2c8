"""engines (issue 12): the registry of engines Dockyard drives; containers by engine

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engines",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("addr", sa.String(512), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),  # local | remote | swarm
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("cpus", sa.Float),  # declared capacity; None: what the engine reports
        sa.Column("memory", sa.BigInteger),  # bytes; likewise
        sa.Column("tls", sa.LargeBinary),  # sealed TLS client files (adapters/crypto.py)
        sa.Column("draining", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_containers_engine", "containers", ["engine", "status"])


def downgrade() -> None:
    op.drop_index("ix_containers_engine", table_name="containers")
    op.drop_table("engines")
