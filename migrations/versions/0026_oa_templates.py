"""Official Account templates in the catalog (issue 15), placeholder

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 15:45:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
