"""issue 13: the pairing lookup's index (user, template, source, time)

A report looks for the other source's unpaired event of the same prompt within the pairing window. With
only (user, template, time) it read every event of the user and template in the window, its own source's
included, so a user whose mini-program reports on every page view made each report slower than the last.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 08:00:00
"""

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_grant_event_pairing", "grant_event", ["user_id", "template_id", "source", "occurred_at"]
    )


def downgrade():
    op.drop_index("ix_grant_event_pairing", table_name="grant_event")
