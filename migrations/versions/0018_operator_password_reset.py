"""operator password reset: a temporary password set by an admin must be changed at the next login

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 10:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("operator", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("operator", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
