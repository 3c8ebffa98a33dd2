"""issue 15 (channels): an Official Account job-finish event names the delivery it was joined to

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 19:00:00

``oa_event.delivery_id``: the delivery sent through the Official Account whose msgid a
``TEMPLATESENDJOBFINISH`` carries; NULL while no delivery has recorded that msgid yet (the event came
first: the engine's finalize joins it in the commit that records the msgid).
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("oa_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_oa_event_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_oa_event_delivery_id_delivery"),
            "delivery",
            ["delivery_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("oa_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_oa_event_delivery_id_delivery"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_oa_event_delivery_id"))
        batch_op.drop_column("delivery_id")
