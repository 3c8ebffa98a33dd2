"""frequency cap (issue 14): the cap's settings and the index its count at claim time reads

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 15:45:00

``dispatch_state.frequency_cap_messages`` / ``frequency_cap_days``: at most that many campaign messages per
user in any window of that many days (3 in 7 by default; 0 messages = no cap). The claim counts a batch's
users' campaign messages sent, maybe sent or in flight; ``ix_delivery_frequency_cap`` holds only those rows
(partial), by user and send time, so the count never reads a user's skipped or failed rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

FREQUENCY_CAP_ROWS = "campaign_id IS NOT NULL AND state IN ('sending', 'sent', 'unknown')"


def upgrade():
    with op.batch_alter_table("dispatch_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("frequency_cap_messages", sa.Integer(), server_default="3", nullable=False)
        )
        batch_op.add_column(sa.Column("frequency_cap_days", sa.Integer(), server_default="7", nullable=False))
    op.create_index(
        "ix_delivery_frequency_cap",
        "delivery",
        ["user_id", "sent_at"],
        unique=False,
        sqlite_where=sa.text(FREQUENCY_CAP_ROWS),
        postgresql_where=sa.text(FREQUENCY_CAP_ROWS),
    )


def downgrade():
    op.drop_index("ix_delivery_frequency_cap", table_name="delivery")
    with op.batch_alter_table("dispatch_state", schema=None) as batch_op:
        batch_op.drop_column("frequency_cap_days")
        batch_op.drop_column("frequency_cap_messages")
