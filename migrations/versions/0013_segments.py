"""segments: saved user filters (placeholder)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:25:00

"""

from alembic import op  # noqa: F401

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    pass  # PLACEHOLDER: filled in by the work on issue 11 (removed if unused)


def downgrade():
    pass
