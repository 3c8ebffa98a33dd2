"""dispatch state row exists from the migration on (placeholder)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:30:00

"""

from alembic import op  # noqa: F401

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    pass  # PLACEHOLDER: filled in by the work on issue 10 (removed if unused)


def downgrade():
    pass
