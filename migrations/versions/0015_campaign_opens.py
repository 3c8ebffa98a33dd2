"""campaign opens: a tracking token per campaign delivery, and when its card was first opened

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:25:00

WeChat never tells anyone that a subscribe message was opened. A campaign delivery's ``page`` carries
``tz=<open_token>`` (a random token, unique), and the mini-program reports it (``POST /api/mp/opens``),
which stamps ``opened_at`` once. ``ix_delivery_campaign_opened`` lets a campaign's open count come from
the index alone. Only the ``delivery`` table is touched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("open_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_delivery_open_token"), ["open_token"])
        batch_op.create_index("ix_delivery_campaign_opened", ["campaign_id", "opened_at"], unique=False)


def downgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_campaign_opened")
        batch_op.drop_constraint(batch_op.f("uq_delivery_open_token"), type_="unique")
        batch_op.drop_column("opened_at")
        batch_op.drop_column("open_token")
