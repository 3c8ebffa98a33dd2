"""issue 15 (channels), placeholder for a helper's schema change

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 19:00:00
"""

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
