"""merge the catalog, grants and dispatch branches

Revision ID: 0008
Revises: 0004, 0005, 0007
Create Date: 2026-11-23 19:40:00

"""

revision = "0008"
down_revision = ("0004", "0005", "0007")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
