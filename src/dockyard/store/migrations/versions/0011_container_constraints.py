"""containers.constraints (issue 12): a create's label constraints, kept on the record

Placement used them and dropped them; a swarm engine carries them to the stack as
``node.labels`` constraints (docs/engines.md "Swarm"). Nullable: older records have none.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.add_column(sa.Column("constraints", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("containers") as batch:
        batch.drop_column("constraints")
