"""declared user attribute keys (issue 14)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 15:00:00

``user_attribute`` declares the keys the users API may write into ``wechat_user.attributes`` and their
types. Existing users' attributes are left as they are: undeclared keys stay readable and filterable.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_attribute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_attribute")),
        sa.UniqueConstraint("key", name=op.f("uq_user_attribute_key")),
    )


def downgrade():
    op.drop_table("user_attribute")
