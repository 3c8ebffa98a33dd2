"""campaign speed: users' tags and attributes as JSONB with GIN indexes on PostgreSQL

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 10:40:00

A segment's tag and attribute conditions are containment tests (``tags @> '["vip"]'``,
``attributes @> '{"city": "上海"}'``) on PostgreSQL, answered by GIN indexes instead of parsing every
candidate row's JSON text (docs/benchmarks.md, segments). ``json`` keeps text, ``jsonb`` a parsed form, so
the columns change type there. SQLite keeps its JSON text; the two indexes exist there too (the models
declare them), each limited by ``WHERE 0`` so that it holds no row and costs nothing.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

COLUMNS = ("tags", "attributes")


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "ALTER TABLE wechat_user"
            " ALTER COLUMN tags TYPE jsonb USING tags::jsonb,"
            " ALTER COLUMN attributes TYPE jsonb USING attributes::jsonb"
        )
    for column in COLUMNS:
        op.create_index(
            f"ix_wechat_user_{column}",
            "wechat_user",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "jsonb_path_ops"},
            sqlite_where=sa.false(),
        )


def downgrade():
    for column in COLUMNS:
        op.drop_index(f"ix_wechat_user_{column}", table_name="wechat_user")
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.alter_column(
                "wechat_user",
                column,
                type_=sa.JSON(),
                existing_type=postgresql.JSONB(),
                postgresql_using=f"{column}::json",
            )
