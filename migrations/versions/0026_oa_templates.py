"""Official Account templates in the catalog (issue 15)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 15:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oa_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("primary_industry", sa.String(length=64), nullable=False),
        sa.Column("deputy_industry", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("example", sa.Text(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column(
            "drift",
            sa.Enum("none", "changed", "removed", name="drift", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("drift_note", sa.String(length=512), nullable=False),
        sa.Column("drift_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wechat_snapshot", sa.JSON(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oa_template")),
        sa.UniqueConstraint("template_id", name=op.f("uq_oa_template_template_id")),
    )


def downgrade():
    op.drop_table("oa_template")
