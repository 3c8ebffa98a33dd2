"""push nonces remembered for the freshness window (placeholder)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:30:00

"""

from alembic import op  # noqa: F401

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    pass  # PLACEHOLDER: filled in by the work on issue 10 (removed if unused)


def downgrade():
    pass
