"""jobs (builds and pulls, SPEC §6) and registries (credentials, encrypted at rest)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from dockyard.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),  # build | pull
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("step", sa.Integer),
        sa.Column("total_steps", sa.Integer),
        sa.Column("image_id", sa.String(128)),
        sa.Column("digest", sa.String(160)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),  # the request, secrets removed
        sa.Column("progress", sa.JSON, nullable=False),  # per layer, for pulls and pushes
        sa.Column("error", sa.JSON),  # {"kind", "code", "message", "step"}
        sa.Column("instance", sa.String(32), nullable=False),  # the process that runs it
    )
    op.create_index("ix_jobs_owner_created", "jobs", ["owner", "created_at", "id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_created", "jobs", ["created_at", "id"])
    op.create_table(
        "registries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("shared", sa.Boolean, nullable=False),  # an admin's, usable by everyone
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),  # encrypted password or token
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_registries_owner", "registries", ["owner", "server"])


def downgrade() -> None:
    op.drop_table("registries")
    op.drop_table("jobs")
