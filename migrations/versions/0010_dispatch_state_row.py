"""dispatch state row exists from the migration on; deliveries say when their attempt started

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:30:00

Workers started together on a fresh database both found no dispatch-state row and both inserted
id 1 (one died on the primary key). The row now exists from here on; ``load_dispatch_state`` still
tolerates its absence (tests truncate tables) with an insert that ignores a conflict.

``delivery.attempt_started_at`` is set in a commit before the attempt's request may leave: a row
whose lease ran out without it was never sent, so the reconciler returns it to the queue instead of
calling its outcome unknown.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

dispatch_state = sa.table(
    "dispatch_state",
    sa.column("id", sa.Integer),
    sa.column("rate_per_second", sa.Integer),
    sa.column("concurrency", sa.Integer),
    sa.column("tokens", sa.Float),
    sa.column("tokens_at", sa.DateTime(timezone=True)),
    sa.column("paused_reason", sa.String),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_started_at", sa.DateTime(timezone=True), nullable=True))
    # Rows in flight under the previous code may have left: they count as started, so a lost worker's
    # rows become unknown as before and are never sent twice.
    delivery = sa.table(
        "delivery",
        sa.column("state", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("attempt_started_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        delivery.update()
        .where(delivery.c.state == "sending")
        .values(attempt_started_at=delivery.c.updated_at)
    )
    connection = op.get_bind()
    if connection.execute(sa.select(sa.func.count()).select_from(dispatch_state)).scalar() == 0:
        now = datetime.now(UTC)
        # The defaults of dashboard.dispatch.claim: 500 messages a second, a full bucket to start.
        op.bulk_insert(
            dispatch_state,
            [
                {
                    "id": 1,
                    "rate_per_second": 500,
                    "concurrency": 64,
                    "tokens": 500.0,
                    "tokens_at": now,
                    "paused_reason": "",
                    "updated_at": now,
                }
            ],
        )


def downgrade():
    # The row stays: it holds the operator's sending limits, and 0007's table accepts it.
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("attempt_started_at")
