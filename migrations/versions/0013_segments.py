"""segments: saved user filters

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:25:00

A segment keeps a filter document (``dashboard.audience.segments``), not a list of users: who is in it is
computed when it is counted or a campaign starts. ``ix_grant_balance_template_live`` lets the grant
condition be answered from an index (docs/benchmarks.md, segments).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["operator.id"],
            name=op.f("fk_segment_created_by_id_operator"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_segment_name")),
    )

    # A segment's grant condition reads who holds a live grant of one template from this index alone.
    op.create_index(
        "ix_grant_balance_template_live",
        "grant_balance",
        ["template_id", "user_id", "kind", "credits", "active"],
    )


def downgrade():
    op.drop_index("ix_grant_balance_template_live", table_name="grant_balance")
    op.drop_table("segment")
