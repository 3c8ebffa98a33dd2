"""push nonces remembered for the freshness window

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "push_nonce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_nonce")),
        sa.UniqueConstraint("timestamp", "nonce", name="uq_push_nonce_timestamp_nonce"),
    )


def downgrade():
    op.drop_table("push_nonce")
