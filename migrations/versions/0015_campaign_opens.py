"""campaign opens: a tracking token per campaign delivery (placeholder)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:25:00

"""

from alembic import op  # noqa: F401

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    pass  # PLACEHOLDER: filled in by the work on issue 11 (removed if unused)


def downgrade():
    pass
