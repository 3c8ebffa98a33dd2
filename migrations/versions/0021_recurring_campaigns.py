"""recurring campaigns and their occurrences (issue 14)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 15:00:00

A recurring campaign keeps its ``schedule`` (JSON) and ``next_occurrence_at``; each occurrence is a run, a
child campaign row (``parent_id``, ``occurrence_at``). ``uq_campaign_parent_id`` makes an
occurrence one run however many schedulers insert it at once (insert-on-conflict-do-nothing); it also
serves the parent's list of runs. The new state ``missed`` needs no schema change (the state column is a
VARCHAR(16) without a CHECK).
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("next_occurrence_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("occurrence_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_parent_id_campaign"),
            "campaign",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(batch_op.f("uq_campaign_parent_id"), ["parent_id", "occurrence_at"])


def downgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_campaign_parent_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_campaign_parent_id_campaign"), type_="foreignkey")
        batch_op.drop_column("occurrence_at")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("next_occurrence_at")
        batch_op.drop_column("schedule")
