"""Official Account channel (issue 15): followers and the OA's pushed events

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oa_follower",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("unionid", sa.String(length=64), nullable=True),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("followed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unfollowed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oa_follower")),
        sa.UniqueConstraint("openid", name=op.f("uq_oa_follower_openid")),
    )
    with op.batch_alter_table("oa_follower", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oa_follower_unionid"), ["unionid"], unique=False)
    op.create_table(
        "oa_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("msgid", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("body_format", sa.String(length=8), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oa_event")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_oa_event_dedup_key")),
    )
    with op.batch_alter_table("oa_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oa_event_msgid"), ["msgid"], unique=False)
        batch_op.create_index(batch_op.f("ix_oa_event_openid"), ["openid"], unique=False)


def downgrade():
    with op.batch_alter_table("oa_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oa_event_openid"))
        batch_op.drop_index(batch_op.f("ix_oa_event_msgid"))
    op.drop_table("oa_event")
    with op.batch_alter_table("oa_follower", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oa_follower_unionid"))
    op.drop_table("oa_follower")
