"""The dispatch contract: reserve before the call, then spend, release or zero — each exactly once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.extensions import db
from dashboard.grants import (
    GrantLedger,
    ReserveOutcome,
    release_credit,
    reserve_credit,
    spend_credit,
    zero_credits,
)
from dashboard.grants.services import record_answers
from dashboard.models.grants import GrantBalance, GrantEvent

T = "TEMPLATE_for_sends"


def give(user, credits: int, template_id: str = T) -> None:
    record_answers(user.id, [(template_id, "accept")] * credits, source="client")
    db.session.commit()


def credits(user, template_id: str = T) -> int:
    return db.session.scalar(
        select(GrantBalance.credits)
        .where(GrantBalance.user_id == user.id, GrantBalance.template_id == template_id)
        .execution_options(populate_existing=True)
    )


def send_events(delivery_id: int) -> list[tuple[str, int]]:
    rows = db.session.scalars(
        select(GrantEvent).where(GrantEvent.delivery_id == delivery_id).order_by(GrantEvent.id)
    )
    return [(e.status, e.credit_delta) for e in rows]


def ledger_total(user) -> int:
    return sum(db.session.scalars(select(GrantEvent.credit_delta).where(GrantEvent.user_id == user.id)))


def test_a_successful_send_reserves_then_spends_one_credit(make_user):
    user = make_user()
    give(user, 2)
    reservation = reserve_credit(user, T, delivery_id=1)
    assert reservation.ok and reservation.outcome == ReserveOutcome.reserved and reservation.credits_left == 1
    assert spend_credit(user, T, 1)
    db.session.commit()
    assert credits(user) == 1
    assert send_events(1) == [("spent", -1)]
    assert ledger_total(user) == credits(user)


def test_repeating_any_step_for_the_same_delivery_changes_nothing(make_user):
    user = make_user()
    give(user, 3)
    assert reserve_credit(user, T, 7).outcome == ReserveOutcome.reserved
    assert reserve_credit(user, T, 7).outcome == ReserveOutcome.already_reserved
    assert spend_credit(user, T, 7) and spend_credit(user, T, 7)
    assert release_credit(user, T, 7) is False  # spent: nothing goes back
    assert reserve_credit(user, T, 7).outcome == ReserveOutcome.no_grant  # a spent delivery never sends again
    db.session.commit()
    assert credits(user) == 2
    assert send_events(7) == [("spent", -1)]


def test_a_failed_send_gives_its_credit_back_once(make_user):
    user = make_user()
    give(user, 1)
    assert reserve_credit(user, T, 2).ok
    assert credits(user) == 0
    assert release_credit(user, T, 2, note="47003")
    assert release_credit(user, T, 2) is False
    db.session.commit()
    assert credits(user) == 1
    assert send_events(2) == [("released", 0)]
    # A retry of the same delivery (retry_wait) reserves again.
    assert reserve_credit(user, T, 2).outcome == ReserveOutcome.reserved
    assert ledger_total(user) == credits(user) == 0


def test_43101_zeroes_the_balance_and_keeps_the_reserved_credit(make_user):
    user = make_user()
    give(user, 3)
    assert reserve_credit(user, T, 3).ok
    assert zero_credits(user, T, 3)
    assert zero_credits(user, T, 3) is False
    db.session.commit()
    assert credits(user) == 0
    assert send_events(3) == [("reserved", -1), ("no_grant", -2)]
    assert ledger_total(user) == 0
    assert reserve_credit(user, T, 4).outcome == ReserveOutcome.no_grant


def test_without_credits_nothing_is_reserved(make_user):
    user = make_user()
    assert reserve_credit(user, "NEVER_ACCEPTED", 5).outcome == ReserveOutcome.no_grant
    give(user, 1)
    record_answers(user.id, [(T, "reject")], source="change_event")
    assert reserve_credit(user, T, 5).outcome == ReserveOutcome.no_grant
    assert spend_credit(user, T, 6) is False


def test_the_credit_budget_keeps_credits_for_transactional_sends(make_user):
    user = make_user()
    give(user, 2)
    assert reserve_credit(user, T, 10, keep=1).outcome == ReserveOutcome.reserved
    assert reserve_credit(user, T, 11, keep=1).outcome == ReserveOutcome.budget
    assert reserve_credit(user, T, 12, keep=0).outcome == ReserveOutcome.reserved
    assert credits(user) == 0


def test_spend_without_a_reservation_takes_a_credit(make_user):
    user = make_user()
    give(user, 1)
    assert spend_credit(user, T, 20)
    assert send_events(20) == [("spent", -1)]
    assert credits(user) == 0


def test_zero_without_a_delivery_is_a_plain_correction(make_user):
    user = make_user()
    give(user, 2)
    assert zero_credits(user.id, T)
    db.session.commit()
    assert credits(user) == 0 and ledger_total(user) == 0


@dataclass(frozen=True)
class Row:
    delivery_id: int
    user_id: int | None
    openid: str
    template_id: str
    source: str = "campaign"
    action: str = "spend"


def test_the_batch_ledger_for_the_dispatch_engine(make_user):
    alice, bob, carol = make_user("o_alice"), make_user("o_bob"), make_user("o_carol")
    give(alice, 2)
    give(bob, 1)
    ledger = GrantLedger(keep_for=lambda template_id, source: 1 if source == "campaign" else 0)
    rows = [
        Row(100, alice.id, alice.openid, T),
        Row(101, None, bob.openid, T, source="api"),  # found by openid
        Row(102, None, bob.openid, T),  # nothing left
        Row(103, carol.id, carol.openid, T),  # never accepted
        Row(104, None, "o_stranger", T),  # unknown user
    ]
    assert ledger.reserve(db.session, rows) == {
        100: None,
        101: None,
        102: "no_grant",
        103: "no_grant",
        104: "no_grant",
    }
    ledger.settle(
        db.session,
        [Row(100, alice.id, alice.openid, T, action="release"), Row(101, None, bob.openid, T, action="zero")],
    )
    ledger.settle(db.session, [Row(100, alice.id, alice.openid, T, action="release")])  # a repeat
    db.session.commit()
    assert credits(alice) == 2 and credits(bob) == 0
    assert send_events(100) == [("released", 0)]
    assert send_events(101) == [("reserved", -1), ("no_grant", 0)]


def test_concurrent_reservations_never_take_more_credits_than_there_are(app, make_user):
    user = make_user()
    give(user, 5)
    user_id = user.id
    results: list[str] = []
    lock = threading.Lock()

    def worker(delivery_id: int) -> None:
        with app.app_context(), Session(db.engine) as session:
            outcome = reserve_credit(user_id, T, delivery_id, session=session).outcome
            session.commit()
            with lock:
                results.append(outcome.value)

    threads = [threading.Thread(target=worker, args=(1000 + i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["no_grant"] * 7 + ["reserved"] * 5
    assert credits(user) == 0 and ledger_total(user) == 0
