"""issue 15: partial indexes for the minute tick's sweep of reports that missed their delivery

``dispatch.finalize.join_missed_reports`` looks, every minute, for the last hour's delivery reports and
Official Account job-finishes that no delivery has yet. Most rows are joined (and follow events carry no
msgid), so these indexes hold only the few rows the sweep reads, instead of it scanning the tables.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

UNJOINED = "delivery_id IS NULL"
UNJOINED_WITH_MSGID = "delivery_id IS NULL AND msgid IS NOT NULL"


def upgrade():
    op.create_index(
        "ix_sent_report_unjoined",
        "sent_report",
        ["reported_at"],
        postgresql_where=sa.text(UNJOINED),
        sqlite_where=sa.text(UNJOINED),
    )
    op.create_index(
        "ix_oa_event_unjoined",
        "oa_event",
        ["received_at"],
        postgresql_where=sa.text(UNJOINED_WITH_MSGID),
        sqlite_where=sa.text(UNJOINED_WITH_MSGID),
    )


def downgrade():
    op.drop_index("ix_oa_event_unjoined", table_name="oa_event")
    op.drop_index("ix_sent_report_unjoined", table_name="sent_report")
