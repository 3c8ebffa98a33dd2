"""The frequency cap's count at claim time reads the batch's users' rows, never every row sent so far.

Counted as a ``GROUP BY`` over ``user_id IN (…)``, both planners preferred walking the state index over
every ``sent`` row (98 ms a claim on PostgreSQL at 10,000 sent, growing with each campaign): the count is
now one correlated count per user of the batch, which only the user-led indexes can answer.
"""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.dispatch.claim import load_dispatch_state
from dashboard.dispatch.frequency_cap import count_window
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser, utcnow

SENT_ROWS = 300


class Row:
    def __init__(self, user_id: int) -> None:
        self.user_id, self.campaign_id = user_id, 1


def test_the_count_is_driven_by_the_batch_users_and_reads_their_rows_only(app):
    with app.app_context():
        now = utcnow()
        db.session.execute(sa.insert(WechatUser), [{"openid": f"ocap{i:05d}"} for i in range(SENT_ROWS)])
        users = db.session.scalars(sa.select(WechatUser.id).order_by(WechatUser.id)).all()
        db.session.execute(
            sa.insert(Delivery),
            [
                {
                    "source": DeliverySource.campaign,
                    "campaign_id": 1,
                    "user_id": user_id,
                    "openid": f"ocap{n:05d}",
                    "template_id": "TCAP",
                    "data": {},
                    "state": DeliveryState.sent,
                    "sent_at": now,
                }
                for n, user_id in enumerate(users)
            ],
        )
        db.session.commit()
        statements: list[tuple[str, object]] = []

        def keep(conn, cursor, statement, parameters, context, executemany):
            if "count(" in statement:
                statements.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", keep)
        try:
            state = load_dispatch_state(db.session)
            counted = count_window(db.session, state, [Row(u) for u in users[:256]], now)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", keep)
        assert counted is not None and counted.counted == dict.fromkeys(users[:256], 1)
        [(statement, parameters)] = statements
        raw = db.session.connection().connection.driver_connection
        if db.engine.dialect.name == "postgresql":
            cursor = raw.cursor()
            cursor.execute("ANALYZE delivery")
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: make it choose among indexes
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(line for (line,) in cursor.fetchall())
        else:
            plan = "\n".join(
                str(line[-1]) for line in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            )
        db.session.rollback()
    assert "ix_delivery_state_id" not in plan and "ix_delivery_due" not in plan, plan
    assert "ix_delivery_frequency_cap" in plan or "ix_delivery_user_id" in plan, plan
