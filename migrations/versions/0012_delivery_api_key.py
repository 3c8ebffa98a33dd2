"""deliveries remember the API key that created them (placeholder)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 06:30:00

"""

from alembic import op  # noqa: F401

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    pass  # PLACEHOLDER: filled in by the work on issue 10 (removed if unused)


def downgrade():
    pass
