"""BulkWrite against the real schema, on SQLite and PostgreSQL: values, types, keys and transactions.

Every test writes through ``BulkWrite.execute`` into the migrated tables of the app fixture and reads
the rows back through SQLAlchemy (and, where the stored form matters, through raw SQL), so a wrong bind
order, a skipped type conversion or a write outside the caller's transaction shows up as a wrong row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from dashboard.bulk_writes import BulkWrite
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryAttempt, DeliverySource, DeliveryState, WechatUser
from dashboard.models.grants import GrantEvent

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=BEIJING)  # 01:30:15.123456 UTC

d = Delivery.__table__.c


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def add_deliveries(count: int, openid: str = "o_bulk_1") -> list[int]:
    """A user and ``count`` pending API deliveries to them; committed, so they survive a test's rollback."""
    user = WechatUser(openid=openid)
    db.session.add(user)
    db.session.flush()
    deliveries = [
        Delivery(
            source=DeliverySource.api,
            openid=openid,
            template_id="tpl_bulk",
            data={"thing1": {"value": f"n{n}"}},
            user_id=user.id,
            lease_until=T0 + timedelta(minutes=n),
        )
        for n in range(count)
    ]
    db.session.add_all(deliveries)
    db.session.flush()
    ids = [delivery.id for delivery in deliveries]
    db.session.commit()  # and leave the session outside any transaction
    return ids


def attempt_row(delivery_id: int, number: int, **values) -> dict:
    row = {
        "delivery_id": delivery_id,
        "number": number,
        "started_at": T0 + timedelta(seconds=number),
        "finished_at": None,
        "outcome": DeliveryState.sent,
        "errcode": None,
        "errmsg": "",
        "msgid": None,
        "category": "",
        "elapsed_ms": None,
    }
    row.update(values)
    return row


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def fresh_count(model) -> int:
    """Counted on another connection: what is committed, not what this session has pending."""
    with db.engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(model))


def snapshot(ids: list[int]) -> dict[int, tuple]:
    columns = [d.state, d.errcode, d.errmsg, d.msgid, d.reason, d.not_before, d.sent_at, d.lease_until]
    columns += [d.attempts, d.updated_at]
    rows = db.session.execute(sa.select(d.id, *columns).where(d.id.in_(ids))).all()
    return {row[0]: tuple(row[1:]) for row in rows}


INSERT_ATTEMPTS = sa.insert(DeliveryAttempt.__table__)


# -- INSERT ---------------------------------------------------------------------------------------------


def test_an_insert_writes_every_row_with_its_values(ctx):
    delivery_ids = add_deliveries(3)
    states = list(DeliveryState)
    rows = []
    for n in range(300):
        started = T0 + timedelta(seconds=n, microseconds=n)
        rows.append(
            attempt_row(
                delivery_ids[n % 3],
                n,
                started_at=started if n % 2 else started.astimezone(UTC),
                finished_at=started + timedelta(milliseconds=250) if n % 5 else None,
                outcome=states[n % len(states)],
                errcode=None if n % 4 == 0 else 43101 + n,
                errmsg=f"message {n} 中文",
                msgid=f"m{n}" if n % 3 else None,
                category="transient" if n % 7 == 0 else "",
                elapsed_ms=n * 1000 if n % 6 else None,
            )
        )

    BulkWrite(INSERT_ATTEMPTS).execute(db.session, rows)
    db.session.commit()
    db.session.expunge_all()

    stored = db.session.scalars(sa.select(DeliveryAttempt).order_by(DeliveryAttempt.number)).all()
    assert len(stored) == 300
    for attempt, row in zip(stored, rows, strict=True):
        assert attempt.delivery_id == row["delivery_id"]
        assert attempt.number == row["number"]
        assert attempt.started_at == row["started_at"]
        assert attempt.started_at.utcoffset() == timedelta(0)
        assert attempt.finished_at == row["finished_at"]
        if attempt.finished_at is not None:
            assert attempt.finished_at.utcoffset() == timedelta(0)
        assert type(attempt.outcome) is DeliveryState
        assert attempt.outcome is row["outcome"]
        assert attempt.errcode == row["errcode"]
        assert attempt.errmsg == row["errmsg"]
        assert attempt.msgid == row["msgid"]
        assert attempt.category == row["category"]
        assert attempt.elapsed_ms == row["elapsed_ms"]
    assert fresh_count(DeliveryAttempt) == 300


def test_an_insert_stores_exactly_what_the_orm_stores(ctx):
    (delivery_id,) = add_deliveries(1)
    values = {
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1, microseconds=7),
        "outcome": DeliveryState.unknown,
        "errcode": -1,
        "errmsg": "answer lost",
        "msgid": "m-1",
        "category": "unknown",
        "elapsed_ms": 1000,
    }
    db.session.add(DeliveryAttempt(delivery_id=delivery_id, number=1, **values))
    db.session.flush()
    rows = [{"delivery_id": delivery_id, "number": number, **values} for number in (2, 3, 4)]
    BulkWrite(INSERT_ATTEMPTS).execute(db.session, rows)
    db.session.commit()

    # Raw rows, as the database holds them: on SQLite a timestamp is text, and SQL compares it as text.
    raw = db.session.connection().exec_driver_sql(
        "SELECT started_at, finished_at, outcome, errcode, errmsg, msgid, category, elapsed_ms"
        " FROM delivery_attempt ORDER BY number"
    )
    by_orm, *by_bulk = raw.all()
    assert by_bulk == [by_orm] * 3
    assert by_orm[list(values).index("outcome")] == "unknown"  # the enum's stored name, not a repr


def test_enum_values_given_as_strings_are_stored_and_read_back_as_the_enum(ctx):
    (delivery_id,) = add_deliveries(1)
    rows = [attempt_row(delivery_id, 1, outcome="failed"), attempt_row(delivery_id, 2, outcome="retry_wait")]
    BulkWrite(INSERT_ATTEMPTS).execute(db.session, rows)
    db.session.commit()
    outcomes = db.session.scalars(sa.select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.number)).all()
    assert outcomes == [DeliveryState.failed, DeliveryState.retry_wait]
    assert all(type(outcome) is DeliveryState for outcome in outcomes)


def test_an_unknown_enum_value_is_refused_before_anything_is_written(ctx):
    (delivery_id,) = add_deliveries(1)
    rows = [attempt_row(delivery_id, 1), attempt_row(delivery_id, 2, outcome="delivered")]
    with pytest.raises(LookupError):
        BulkWrite(INSERT_ATTEMPTS).execute(db.session, rows)
    assert count(DeliveryAttempt) == 0


def test_a_naive_datetime_is_refused_before_anything_is_written(ctx):
    (delivery_id,) = add_deliveries(1)
    rows = [
        attempt_row(delivery_id, 1),
        attempt_row(delivery_id, 2, finished_at=datetime(2024, 5, 17, 9, 30)),
    ]
    with pytest.raises(ValueError, match="naive datetime"):
        BulkWrite(INSERT_ATTEMPTS).execute(db.session, rows)
    assert count(DeliveryAttempt) == 0


def test_grant_events_keep_their_booleans_and_timestamps(ctx):
    (delivery_id,) = add_deliveries(1)
    user_id = db.session.scalar(sa.select(WechatUser.id))
    rows = [
        {
            "user_id": user_id,
            "template_id": f"tpl_{n % 2}",
            "template_known": n % 2 == 0,
            "kind": "one_time",
            "source": "dispatch",
            "status": "spent" if n % 3 else "reserved",
            "credit_delta": -1 if n % 3 else 0,
            "credits_after": 10 - n,
            "active_after": n % 4 == 1,
            "note": f"batch {n}",
            "delivery_id": delivery_id if n % 2 else None,
            "occurred_at": T0 + timedelta(hours=n),
            "created_at": T0,
        }
        for n in range(12)
    ]
    BulkWrite(sa.insert(GrantEvent.__table__)).execute(db.session, rows)
    db.session.commit()
    db.session.expunge_all()

    events = db.session.scalars(sa.select(GrantEvent).order_by(GrantEvent.id)).all()
    got = [
        {key: getattr(event, key) for key in rows[0]}
        | {"scene": event.scene, "pairs_with_id": event.pairs_with_id}
        for event in events
    ]
    assert got == [row | {"scene": None, "pairs_with_id": None} for row in rows]
    assert all(type(event.template_known) is bool and type(event.active_after) is bool for event in events)
    assert all(event.occurred_at.tzinfo is not None for event in events)


# -- UPDATE ------------------------------------------------------------------------------------------------


RECORD_ANSWER = (
    sa.update(Delivery.__table__)
    .where(d.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("b_state"),
        errcode=sa.bindparam("b_errcode"),
        errmsg=sa.bindparam("b_errmsg"),
        msgid=sa.bindparam("b_msgid"),
        not_before=sa.bindparam("b_not_before"),
        sent_at=sa.bindparam("b_sent_at"),
        lease_until=sa.null(),
        updated_at=sa.bindparam("b_now"),
    )
)


def answer_row(delivery_id: int, n: int) -> dict:
    return {
        "b_id": delivery_id,
        "b_state": DeliveryState.sent if n % 2 else DeliveryState.retry_wait,
        "b_errcode": 0 if n % 2 else 45009,
        "b_errmsg": "ok" if n % 2 else "quota",
        "b_msgid": f"msg{delivery_id}" if n % 2 else None,
        "b_not_before": None if n % 2 else T0 + timedelta(hours=1),
        "b_sent_at": T0 + timedelta(seconds=n) if n % 2 else None,
        "b_now": T0 + timedelta(seconds=100 + n),
    }


def test_an_update_changes_only_the_addressed_rows(ctx):
    ids = add_deliveries(10)
    before = snapshot(ids)
    addressed = [ids[1], ids[4], ids[7], ids[8]]
    rows = [answer_row(delivery_id, n) for n, delivery_id in enumerate(addressed)]

    BulkWrite(RECORD_ANSWER).execute(db.session, rows)
    db.session.commit()

    after = snapshot(ids)
    for delivery_id in set(ids) - set(addressed):
        assert after[delivery_id] == before[delivery_id]
    for row in rows:
        state, errcode, errmsg, msgid, reason, not_before, sent_at, lease_until, attempts, updated_at = after[
            row["b_id"]
        ]
        assert state is row["b_state"]
        assert (errcode, errmsg, msgid) == (row["b_errcode"], row["b_errmsg"], row["b_msgid"])
        assert (not_before, sent_at, updated_at) == (row["b_not_before"], row["b_sent_at"], row["b_now"])
        assert updated_at.utcoffset() == timedelta(0)
        assert lease_until is None  # the statement's fixed NULL
        assert (reason, attempts) == ("", 0)  # columns the statement does not name are left alone


def test_the_same_bulk_write_runs_again_with_the_same_keys_and_with_reordered_keys(ctx):
    ids = add_deliveries(6)
    write = BulkWrite(RECORD_ANSWER)
    write.execute(db.session, [answer_row(ids[0], 1), answer_row(ids[1], 2)])
    write.execute(db.session, [answer_row(ids[2], 3), answer_row(ids[3], 4)])
    reordered = [dict(reversed(answer_row(delivery_id, n).items())) for n, delivery_id in [(5, ids[4])]]
    write.execute(db.session, reordered)
    db.session.commit()

    after = snapshot(ids)
    for n, delivery_id in [(1, ids[0]), (2, ids[1]), (3, ids[2]), (4, ids[3]), (5, ids[4])]:
        row = answer_row(delivery_id, n)
        state, errcode, errmsg, msgid, _, not_before, sent_at, _, _, updated_at = after[delivery_id]
        assert (state, errcode, errmsg, msgid) == (
            row["b_state"],
            row["b_errcode"],
            row["b_errmsg"],
            row["b_msgid"],
        )
        assert (not_before, sent_at, updated_at) == (row["b_not_before"], row["b_sent_at"], row["b_now"])
    assert after[ids[5]][0] is DeliveryState.pending


def test_the_same_insert_runs_twice(ctx):
    (delivery_id,) = add_deliveries(1)
    write = BulkWrite(INSERT_ATTEMPTS)
    write.execute(db.session, [attempt_row(delivery_id, n) for n in (1, 2)])
    write.execute(db.session, [attempt_row(delivery_id, n, outcome=DeliveryState.failed) for n in (3, 4)])
    # Fewer keys (the nullable columns left out): another INSERT, not the first one's.
    short = [
        {
            "delivery_id": delivery_id,
            "number": n,
            "started_at": T0,
            "outcome": "sent",
            "errmsg": "",
            "category": "",
        }
        for n in (5, 6)
    ]
    write.execute(db.session, short)
    write.execute(db.session, [attempt_row(delivery_id, 7, msgid="m7", errcode=0)])
    db.session.commit()
    stored = db.session.execute(
        sa.select(DeliveryAttempt.number, DeliveryAttempt.outcome, DeliveryAttempt.msgid).order_by(
            DeliveryAttempt.number
        )
    ).all()
    assert [tuple(row) for row in stored] == [
        (1, DeliveryState.sent, None),
        (2, DeliveryState.sent, None),
        (3, DeliveryState.failed, None),
        (4, DeliveryState.failed, None),
        (5, DeliveryState.sent, None),
        (6, DeliveryState.sent, None),
        (7, DeliveryState.sent, "m7"),
    ]


def test_a_single_key_update_with_expressions(ctx):
    ids = add_deliveries(4)
    before = snapshot(ids)
    bump = BulkWrite(
        sa.update(Delivery.__table__)
        .where(d.id == sa.bindparam("b_id"))
        .values(attempts=d.attempts + sa.literal_column("1"), lease_until=sa.null(), updated_at=d.created_at)
    )
    bump.execute(db.session, [{"b_id": ids[0]}, {"b_id": ids[2]}, {"b_id": ids[2]}])
    db.session.commit()

    after = snapshot(ids)
    attempts = {delivery_id: after[delivery_id][8] for delivery_id in ids}
    assert attempts == {ids[0]: 1, ids[1]: 0, ids[2]: 2, ids[3]: 0}
    assert after[ids[0]][7] is None and after[ids[2]][7] is None
    assert after[ids[1]] == before[ids[1]] and after[ids[3]] == before[ids[3]]


def test_one_bind_parameter_used_twice_and_names_the_driver_must_escape(ctx):
    ids = add_deliveries(3)
    write = BulkWrite(
        sa.update(Delivery.__table__)
        .where(d.id == sa.bindparam("row.id"))
        .values(
            state=sa.bindparam("new state (final)"),
            reason=sa.bindparam("why:%"),
            sent_at=sa.bindparam("b_now"),
            updated_at=sa.bindparam("b_now"),
        )
    )
    when = T0 + timedelta(days=1)
    write.execute(
        db.session,
        [
            {
                "row.id": ids[0],
                "new state (final)": DeliveryState.skipped,
                "why:%": "100% opted out",
                "b_now": when,
            },
            {"row.id": ids[2], "new state (final)": DeliveryState.failed, "why:%": "bad data", "b_now": when},
        ],
    )
    db.session.commit()
    rows = db.session.execute(
        sa.select(d.id, d.state, d.reason, d.sent_at, d.updated_at).where(d.id.in_(ids)).order_by(d.id)
    ).all()
    assert [tuple(row[1:]) for row in rows][0] == (DeliveryState.skipped, "100% opted out", when, when)
    assert rows[1].state is DeliveryState.pending
    assert tuple(rows[2][1:]) == (DeliveryState.failed, "bad data", when, when)


# -- missing keys -----------------------------------------------------------------------------------------


def test_an_insert_without_a_defaulted_column_names_it_and_writes_nothing(ctx):
    (delivery_id,) = add_deliveries(1)
    rows = [
        {"delivery_id": delivery_id, "number": n, "outcome": DeliveryState.sent, "finished_at": T0}
        for n in (1, 2)
    ]
    write = BulkWrite(INSERT_ATTEMPTS)
    with pytest.raises(ValueError, match="give no value for") as caught:
        write.execute(db.session, rows)
    message = str(caught.value)
    for column in ("started_at", "errmsg", "category"):  # default=utcnow, default="", default=""
        assert column in message
    for column in (
        "finished_at",
        "msgid",
        "errcode",
        "elapsed_ms",
        "outcome",
        "number",
    ):  # no default, or given
        assert column not in message
    db.session.commit()
    assert fresh_count(DeliveryAttempt) == 0

    # The refusal left nothing behind: the same statement writes complete rows afterwards.
    write.execute(db.session, [attempt_row(delivery_id, 1)])
    db.session.commit()
    assert fresh_count(DeliveryAttempt) == 1


def test_an_update_without_the_onupdate_column_names_it_and_writes_nothing(ctx):
    ids = add_deliveries(2)
    before = snapshot(ids)
    statement = (
        sa.update(Delivery.__table__)
        .where(d.id == sa.bindparam("b_id"))
        .values(state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"))
    )
    with pytest.raises(ValueError, match=r"give no value for updated_at$"):
        BulkWrite(statement).execute(db.session, [{"b_id": ids[0], "b_state": "skipped", "b_reason": "x"}])
    db.session.commit()
    assert snapshot(ids) == before


def test_rows_without_a_bind_parameter_name_it_and_write_nothing(ctx):
    ids = add_deliveries(2)
    before = snapshot(ids)
    rows = [{key: value for key, value in answer_row(ids[0], 1).items() if key != "b_msgid"}]
    with pytest.raises(ValueError, match=r"give no value for b_msgid$"):
        BulkWrite(RECORD_ANSWER).execute(db.session, rows)
    db.session.commit()
    assert snapshot(ids) == before


def test_a_later_row_missing_a_key_fails_before_anything_is_written(ctx):
    (delivery_id,) = add_deliveries(1)
    short = attempt_row(delivery_id, 3)
    del short["category"]
    with pytest.raises(KeyError):
        BulkWrite(INSERT_ATTEMPTS).execute(
            db.session, [attempt_row(delivery_id, 1), attempt_row(delivery_id, 2), short]
        )
    assert count(DeliveryAttempt) == 0


def test_an_empty_row_list_does_nothing(ctx):
    add_deliveries(1)
    session = db.session()
    assert not session.in_transaction()
    BulkWrite(INSERT_ATTEMPTS).execute(db.session, [])
    BulkWrite(RECORD_ANSWER).execute(session, ())
    assert not session.in_transaction()  # not even a connection was taken
    assert count(DeliveryAttempt) == 0


# -- transactions -----------------------------------------------------------------------------------------


def test_it_writes_in_the_sessions_transaction(ctx):
    (delivery_id,) = add_deliveries(1)
    BulkWrite(INSERT_ATTEMPTS).execute(db.session, [attempt_row(delivery_id, n) for n in range(5)])
    assert count(DeliveryAttempt) == 5  # visible inside the transaction...
    assert fresh_count(DeliveryAttempt) == 0  # ...and not committed
    db.session.rollback()
    assert count(DeliveryAttempt) == 0
    assert fresh_count(DeliveryAttempt) == 0


def test_it_writes_in_a_connections_transaction(ctx):
    (delivery_id,) = add_deliveries(1)
    with db.engine.connect() as connection:
        transaction = connection.begin()
        BulkWrite(INSERT_ATTEMPTS).execute(connection, [attempt_row(delivery_id, n) for n in range(5)])
        assert connection.scalar(sa.select(sa.func.count()).select_from(DeliveryAttempt)) == 5
        transaction.rollback()
        assert fresh_count(DeliveryAttempt) == 0
        with connection.begin():
            BulkWrite(INSERT_ATTEMPTS).execute(connection, [attempt_row(delivery_id, 1)])
    assert fresh_count(DeliveryAttempt) == 1


def test_a_failed_write_transaction_keeps_none_of_its_bulk_writes(ctx):
    ids = add_deliveries(3)
    before = snapshot(ids)
    with pytest.raises(RuntimeError, match="worker died"), write_transaction(db.engine) as session:
        BulkWrite(RECORD_ANSWER).execute(session, [answer_row(delivery_id, 1) for delivery_id in ids])
        BulkWrite(INSERT_ATTEMPTS).execute(session, [attempt_row(delivery_id, 1) for delivery_id in ids])
        raise RuntimeError("worker died")
    assert snapshot(ids) == before
    assert fresh_count(DeliveryAttempt) == 0

    with write_transaction(db.engine) as session:
        BulkWrite(INSERT_ATTEMPTS).execute(session, [attempt_row(delivery_id, 1) for delivery_id in ids])
    assert fresh_count(DeliveryAttempt) == 3


# -- regressions --------------------------------------------------------------------------------------------


def test_json_values_that_compare_equal_keep_their_own_type(ctx):
    """SQLAlchemy's own executemany stores each JSON value as given; BulkWrite must store the same."""
    add_deliveries(0)
    user_id = db.session.scalar(sa.select(WechatUser.id))
    columns = ["source", "openid", "template_id", "data", "miniprogram_state", "lang", "state", "attempts"]
    columns += ["reason", "errmsg", "created_at", "updated_at", "user_id", "channel"]
    datas = [True, 1, False, 0, 1.5]
    rows = [
        {
            "source": DeliverySource.test,
            "openid": "o_bulk_1",
            "template_id": "tpl",
            "data": data,
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "state": DeliveryState.pending,
            "attempts": 0,
            "reason": "",
            "errmsg": "",
            "created_at": T0,
            "updated_at": T0,
            "user_id": user_id,
            "channel": "mp_subscribe",
        }
        for data in datas
    ]
    assert sorted(rows[0]) == sorted(columns)
    BulkWrite(sa.insert(Delivery.__table__)).execute(db.session, rows)
    db.session.commit()
    stored = db.session.scalars(sa.select(d.data).order_by(d.id)).all()
    assert [(type(value), value) for value in stored] == [(type(value), value) for value in datas]
