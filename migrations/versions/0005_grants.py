"""grant ledger, grant reports, WeChat pushes, sent reports; users' reported subscription settings

Written by hand (the catalog's 0004 grows beside it from 0003; the two heads are merged later).

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23 19:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("wechat_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("main_switch", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("item_settings", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("settings_reported_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "grant_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("page", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["wechat_user.id"], name=op.f("fk_grant_report_user_id_wechat_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_report")),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_grant_report_user_key"),
    )
    with op.batch_alter_table("grant_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_report_user_id"), ["user_id"], unique=False)

    op.create_table(
        "wechat_push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("body_format", sa.String(length=8), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_push")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_wechat_push_dedup_key")),
    )
    with op.batch_alter_table("wechat_push", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_push_openid"), ["openid"], unique=False)

    op.create_table(
        "grant_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("template_known", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("credit_delta", sa.Integer(), nullable=False),
        sa.Column("credits_after", sa.Integer(), nullable=False),
        sa.Column("active_after", sa.Boolean(), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("page", sa.String(length=512), nullable=True),
        sa.Column("note", sa.String(length=120), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("push_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("pairs_with_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["wechat_user.id"], name=op.f("fk_grant_event_user_id_wechat_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["grant_report.id"], name=op.f("fk_grant_event_report_id_grant_report"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["push_id"], ["wechat_push.id"], name=op.f("fk_grant_event_push_id_wechat_push"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["pairs_with_id"],
            ["grant_event.id"],
            name=op.f("fk_grant_event_pairs_with_id_grant_event"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_event")),
    )
    with op.batch_alter_table("grant_event", schema=None) as batch_op:
        batch_op.create_index("ix_grant_event_user_template_at", ["user_id", "template_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_grant_event_template_status", ["template_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_grant_event_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grant_event_pairs_with_id"), ["pairs_with_id"], unique=False)

    op.create_table(
        "grant_balance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("template_known", sa.Boolean(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_status", sa.String(length=24), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["wechat_user.id"], name=op.f("fk_grant_balance_user_id_wechat_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_balance")),
        sa.UniqueConstraint("user_id", "template_id", name="uq_grant_balance_user_template"),
    )
    with op.batch_alter_table("grant_balance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_balance_template_id"), ["template_id"], unique=False)

    op.create_table(
        "sent_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=32), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["push_id"], ["wechat_push.id"], name=op.f("fk_sent_report_push_id_wechat_push"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name=op.f("fk_sent_report_delivery_id_delivery"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_report")),
    )
    with op.batch_alter_table("sent_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sent_report_push_id"), ["push_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sent_report_msgid"), ["msgid"], unique=False)
        batch_op.create_index(batch_op.f("ix_sent_report_delivery_id"), ["delivery_id"], unique=False)


def downgrade():
    op.drop_table("sent_report")
    op.drop_table("grant_balance")
    op.drop_table("grant_event")
    op.drop_table("wechat_push")
    op.drop_table("grant_report")
    with op.batch_alter_table("wechat_user", schema=None) as batch_op:
        batch_op.drop_column("settings_reported_at")
        batch_op.drop_column("item_settings")
        batch_op.drop_column("main_switch")
