"""Issue 13: one ledger row per send, and a finalize whose statements do not grow with the batch.

A reservation that became a spend is ONE ``grant_event`` row (``spent``, −1); a released reservation is
ONE row (``released``, 0) and the credit is back on the balance; the ledger still sums to the balances.
On PostgreSQL a batch's answers, attempts and ledger settlement are a constant number of statements
(one ``UPDATE delivery … FROM unnest(…)``, one multi-row INSERT, one ledger UPDATE, the early-report
look-up), whatever the batch size.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.claim import claim_due
from dashboard.dispatch.finalize import finalize, release_unstarted
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.dispatch.outcomes import SendResult
from dashboard.extensions import db
from dashboard.grants import reserve_credit
from dashboard.grants.ledger import GrantLedger, last_statuses
from dashboard.models import Delivery, DeliveryAttempt, DeliveryState, WechatUser, utcnow
from dashboard.models.grants import GrantBalance, GrantEvent, GrantSource
from tests.dispatch.helpers import add_delivery, add_user, grant, prepare, states

T = "TEMPLATE_issue13"


@pytest.fixture(autouse=True)
def ctx(app):
    with app.app_context():
        yield


def seed(app, count: int, credits: int = 1, template_id: str = T, first: int = 0) -> None:
    """``count`` users holding ``credits`` one-time credits each, one pending campaign delivery each."""
    with app.app_context():
        for i in range(first, first + count):
            openid = f"o_issue13_{i:04d}"
            user_id = add_user(openid)
            grant(user_id, template_id, credits)
            add_delivery(openid, template_id, {"thing1": "您的订单已发货"})
        db.session.commit()


def answers(claims, errcode: int = 0, category: str = "") -> list[SendResult]:
    now = utcnow()
    return [
        SendResult(
            c.id,
            c.attempt,
            now - timedelta(milliseconds=30),
            now,
            errcode,
            "ok" if errcode == 0 else "system error",
            f"msg{c.id}" if errcode == 0 else None,
            category,
        )
        for c in claims
    ]


def send_events(app) -> dict[int, list[tuple[str, int]]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(GrantEvent.delivery_id, GrantEvent.status, GrantEvent.credit_delta)
            .where(GrantEvent.source == GrantSource.send_result.value)
            .order_by(GrantEvent.id)
        ).all()
    by_delivery: dict[int, list[tuple[str, int]]] = {}
    for delivery_id, status, delta in rows:
        by_delivery.setdefault(delivery_id, []).append((status, delta))
    return by_delivery


def ledger_sums_to_balances(app) -> None:
    with app.app_context():
        sums = dict(
            db.session.execute(
                sa.select(GrantEvent.user_id, sa.func.sum(GrantEvent.credit_delta)).group_by(
                    GrantEvent.user_id
                )
            ).all()
        )
        balances = dict(db.session.execute(sa.select(GrantBalance.user_id, GrantBalance.credits)).all())
    assert sums == balances


def test_every_sent_message_is_one_ledger_row(app, sandbox, dispatcher, template):
    prepare(app, sandbox, 12, template)
    assert dispatcher.drain(seconds=60) == 12
    assert states(app) == {"sent": 12}
    events = send_events(app)
    assert len(events) == 12
    assert all(rows == [("spent", -1)] for rows in events.values()), events
    ledger_sums_to_balances(app)


def test_a_released_reservation_is_one_row_and_gives_the_credit_back(app):
    seed(app, 5, credits=2)
    ledger = grants_ledger()
    batch = claim_due(db.engine, ledger, 5)
    assert len(batch.claims) == 5
    with app.app_context():
        reserved = db.session.scalars(sa.select(GrantBalance.credits)).all()
    assert reserved == [1] * 5
    assert finalize(db.engine, ledger, answers(batch.claims, -1, "transient")) == 5
    events = send_events(app)
    assert all(rows == [("released", 0)] for rows in events.values()), events
    with app.app_context():
        assert db.session.scalars(sa.select(GrantBalance.credits)).all() == [2] * 5
        # The released row shows the balance as it stands: the credit is back.
        assert set(
            db.session.scalars(sa.select(GrantEvent.credits_after).where(GrantEvent.status == "released"))
        ) == {2}
        assert all(s == "released" for s in last_statuses(db.session, events).values())
    ledger_sums_to_balances(app)
    # The retry reserves again: a row of its own, which its spend turns into ``spent``.
    with app.app_context():
        db.session.execute(sa.update(Delivery).values(not_before=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    retry = claim_due(db.engine, ledger, 5)
    assert len(retry.claims) == 5 and {c.attempt for c in retry.claims} == {2}
    assert finalize(db.engine, ledger, answers(retry.claims)) == 5
    assert all(rows == [("released", 0), ("spent", -1)] for rows in send_events(app).values())
    ledger_sums_to_balances(app)


def test_a_requeued_claim_is_one_released_row(app):
    seed(app, 3)
    ledger = grants_ledger()
    batch = claim_due(db.engine, ledger, 3, start=False)
    assert release_unstarted(db.engine, ledger, batch.claims) == 3
    assert all(rows == [("released", 0)] for rows in send_events(app).values())
    assert states(app) == {"pending": 3}
    ledger_sums_to_balances(app)


def test_ledger_history_written_before_issue_13_still_settles(app):
    """A reservation left by the old code settles in place; an old reserved+spent pair stays spent."""
    user = WechatUser(openid="o_issue13_legacy")
    db.session.add(user)
    db.session.flush()
    grant(user.id, T, 3)
    db.session.commit()
    ledger = GrantLedger()
    assert reserve_credit(user, T, 900).ok and reserve_credit(user, T, 901).ok
    # 900: the old finalize wrote a second row (``spent``, 0) after the reservation.
    reserved = db.session.scalars(sa.select(GrantEvent).where(GrantEvent.delivery_id == 900)).one()
    db.session.execute(
        sa.insert(GrantEvent).values(
            **{
                c.name: getattr(reserved, c.name)
                for c in GrantEvent.__table__.columns
                if c.name not in ("id", "status", "credit_delta")
            },
            status="spent",
            credit_delta=0,
        )
    )
    ledger.settle(
        db.session, [_Row(900, user.id, user.openid, T, "spend"), _Row(901, user.id, user.openid, T, "spend")]
    )
    ledger.settle(db.session, [_Row(900, user.id, user.openid, T, "release")])  # too late: nothing goes back
    db.session.commit()
    rows = db.session.execute(
        sa.select(GrantEvent.delivery_id, GrantEvent.status, GrantEvent.credit_delta)
        .where(GrantEvent.delivery_id.in_([900, 901]))
        .order_by(GrantEvent.id)
    ).all()
    assert [tuple(r) for r in rows] == [(900, "reserved", -1), (901, "spent", -1), (900, "spent", 0)]
    assert db.session.scalar(sa.select(GrantBalance.credits).where(GrantBalance.user_id == user.id)) == 1


class _Row:
    def __init__(self, delivery_id, user_id, openid, template_id, action):
        self.delivery_id, self.user_id, self.openid = delivery_id, user_id, openid
        self.template_id, self.action = template_id, action


def count_statements(engine: sa.Engine, work) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


@pytest.mark.parametrize("outcome", ["sent", "mixed"])
def test_finalize_is_a_constant_number_of_statements_whatever_the_batch_size(app, backend, outcome):
    seed(app, 40, credits=2)
    ledger = grants_ledger()
    counts = {}
    for size in (4, 32):
        batch = claim_due(db.engine, ledger, size)
        assert len(batch.claims) == size
        results = answers(batch.claims)
        if outcome == "mixed":  # every other answer a 47003: its reservation is released
            failed = answers(batch.claims[1::2], 47003, "content")
            results = [*results[0::2], *failed]
        statements = count_statements(db.engine, lambda: finalize(db.engine, ledger, results))  # noqa: B023
        counts[size] = statements
    assert len(counts[4]) == len(counts[32]), counts
    if backend == "postgresql":
        # The answers, the attempts, the ledger (plus one balance UPDATE for the releases), the early reports.
        assert len(counts[32]) <= (4 if outcome == "sent" else 6), counts
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryAttempt)) == 36
        written = dict(
            db.session.execute(sa.select(Delivery.state, sa.func.count()).group_by(Delivery.state)).all()
        )
    expected = {DeliveryState.sent: 36, DeliveryState.pending: 4}
    if outcome == "mixed":
        expected = {DeliveryState.sent: 18, DeliveryState.failed: 18, DeliveryState.pending: 4}
    assert written == expected
    events = send_events(app)
    assert sum(len(rows) for rows in events.values()) == 36
    ledger_sums_to_balances(app)


def test_a_fenced_out_answer_writes_nothing(app):
    """The fence is in the UPDATE itself: an answer for an attempt the row has moved on from is dropped."""
    seed(app, 2)
    ledger = grants_ledger()
    batch = claim_due(db.engine, ledger, 2)
    results = answers(batch.claims)
    late = SendResult(
        results[0].delivery_id,
        results[0].attempt + 1,
        results[0].started_at,
        results[0].finished_at,
        0,
        "ok",
        "x",
        "",
    )
    assert finalize(db.engine, ledger, [late, results[1]]) == 1
    with app.app_context():
        rows = dict(db.session.execute(sa.select(Delivery.id, Delivery.state)).all())
    assert rows == {results[0].delivery_id: DeliveryState.sending, results[1].delivery_id: DeliveryState.sent}
    assert send_events(app) == {
        results[0].delivery_id: [("reserved", -1)],
        results[1].delivery_id: [("spent", -1)],
    }


def test_a_release_after_another_event_of_the_balance_appends_and_keeps_the_latest_event_right(app):
    """A prompt answered mid-send: the reservation is no longer the balance's latest event, so the
    release appends ``released`` +1 (as before issue 13) and the latest event still shows the balance."""
    from dashboard.grants.services import record_answers

    seed(app, 1, credits=1)
    ledger = grants_ledger()
    [claim] = claim_due(db.engine, ledger, 1).claims
    user_id = db.session.scalar(sa.select(Delivery.user_id).where(Delivery.id == claim.id))
    record_answers(user_id, [(T, "accept")], source="client")
    db.session.commit()
    assert finalize(db.engine, ledger, answers([claim], 47003, "content")) == 1
    assert send_events(app) == {claim.id: [("reserved", -1), ("released", 1)]}
    db.session.expire_all()
    latest = db.session.scalars(
        sa.select(GrantEvent).where(GrantEvent.user_id == user_id).order_by(GrantEvent.id.desc()).limit(1)
    ).one()
    balance = db.session.scalar(sa.select(GrantBalance.credits).where(GrantBalance.user_id == user_id))
    assert latest.credits_after == balance == 2
    ledger_sums_to_balances(app)
