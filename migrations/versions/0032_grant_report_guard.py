"""issue 13: a PostgreSQL function that refuses a grant report's one-statement write when its reads went stale

The mini-program's grant report writes the report, the balances and the events in one statement on
PostgreSQL, outside an explicit transaction (``dashboard.grants.reports.apply_report_in_one_statement``):
two round trips per report instead of five. A statement is atomic, but a balance changed since the report's
read makes its upsert skip that row; the statement must then write nothing at all. Plain SQL cannot raise
an error, so this function does, with its own SQLSTATE, and the caller records the report the locking way.
VOLATILE (the default), so the planner never evaluates it ahead of the ``CASE`` that guards it.
SQLite runs the report in a transaction and rolls back instead: nothing to create there.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 14:00:00
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

# Also in dashboard/grants/reports.py (STALE_READ_SQLSTATE): a migration keeps its own copy of what it creates.
SQLSTATE = "TZ001"


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
CREATE OR REPLACE FUNCTION tongzhi_refuse_stale_read(message text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '{SQLSTATE}', MESSAGE = message;
END
$$"""
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS tongzhi_refuse_stale_read(text)")
