"""date reminders (issue 14)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 16:00:00

``campaign.reminder`` (JSON) makes a daily recurring campaign a date reminder; ``reminder_sent`` records
each step sent per user and value of the date, its UNIQUE key making the step once per value (insert
or ignore in the run's snapshot transaction).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminder", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "reminder_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("date_value", sa.String(length=10), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_reminder_sent_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["campaign.id"], name=op.f("fk_reminder_sent_run_id_campaign"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["wechat_user.id"],
            name=op.f("fk_reminder_sent_user_id_wechat_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_sent")),
        sa.UniqueConstraint(
            "campaign_id", "step", "user_id", "date_value", name=op.f("uq_reminder_sent_campaign_id")
        ),
    )
    with op.batch_alter_table("reminder_sent", schema=None) as batch_op:
        batch_op.create_index("ix_reminder_sent_run_id", ["run_id", "step"], unique=False)


def downgrade():
    with op.batch_alter_table("reminder_sent", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_sent_run_id")
    op.drop_table("reminder_sent")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("reminder")
