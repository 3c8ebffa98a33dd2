"""campaigns: one notice on one template to one segment's users, sent through the dispatch engine

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 07:25:00

The recipients are the campaign's delivery rows (``delivery.campaign_id``, a bare integer since 0003).
It stays without a foreign key: the dispatch benchmark and engine tests seed campaign deliveries with
no campaign row, and the engine treats such rows as sendable.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("page", sa.String(length=512), nullable=True),
        sa.Column("miniprogram_state", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "scheduled",
                "running",
                "paused",
                "completed",
                "cancelled",
                name="campaignstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("pause_reason", sa.String(length=200), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("rate_per_second", sa.Integer(), nullable=True),
        sa.Column("rate_tokens", sa.Float(), nullable=False),
        sa.Column("rate_tokens_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segment.id"], name=op.f("fk_campaign_segment_id_segment"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["operator.id"],
            name=op.f("fk_campaign_created_by_id_operator"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    op.create_index("ix_campaign_state", "campaign", ["state"], unique=False)


def downgrade():
    op.drop_index("ix_campaign_state", table_name="campaign")
    op.drop_table("campaign")
