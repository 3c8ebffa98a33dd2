"""channels (issue 15): a delivery and a campaign say which channel they send through

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 19:00:00

``delivery.channel``: what was asked (``mp_subscribe``, today's and the default; ``oa_template``; or
``mp_subscribe_or_oa``: a subscribe credit when the user holds one, else the Official Account's template
message when they follow). ``delivery.channel_used``: what the claim chose (``mp_subscribe`` or
``oa_template``; NULL until claimed, and for a row skipped before a channel was chosen). The Official
Account message's own fields: the follower's openid it goes to (chosen at claim through the unionid), the
OA template, its values, and its mini-program page when it differs from ``page``. A campaign carries the
same choice and the OA template's value mapping (the form of ``campaign.data``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=24), server_default="mp_subscribe", nullable=False)
        )
        batch_op.add_column(sa.Column("channel_used", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("oa_openid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("oa_template_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("oa_data", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("oa_pagepath", sa.String(length=512), nullable=True))
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=24), server_default="mp_subscribe", nullable=False)
        )
        batch_op.add_column(sa.Column("oa_template_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("oa_data", sa.JSON(none_as_null=True), nullable=True))


def downgrade():
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("oa_data")
        batch_op.drop_column("oa_template_id")
        batch_op.drop_column("channel")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("oa_pagepath")
        batch_op.drop_column("oa_data")
        batch_op.drop_column("oa_template_id")
        batch_op.drop_column("oa_openid")
        batch_op.drop_column("channel_used")
        batch_op.drop_column("channel")
