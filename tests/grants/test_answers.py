"""The ledger's crediting rules for prompt answers (issue 5, §2), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.grants import services
from dashboard.grants.services import LedgerPolicy, record_answers
from dashboard.models import utcnow
from dashboard.models.grants import GrantBalance, GrantEvent

T1, T2 = "TEMPLATE_one_time_A", "TEMPLATE_one_time_B"
BOTH = LedgerPolicy(pairing_window=timedelta(minutes=10), credit_sources=frozenset({"client", "popup_event"}))


def balance(user, template_id=T1) -> GrantBalance:
    return db.session.scalars(
        select(GrantBalance)
        .where(GrantBalance.user_id == user.id, GrantBalance.template_id == template_id)
        .execution_options(populate_existing=True)
    ).one()


def events(user) -> list[GrantEvent]:
    return list(
        db.session.scalars(select(GrantEvent).where(GrantEvent.user_id == user.id).order_by(GrantEvent.id))
    )


def answer(user, source, status="accept", when=None, template_id=T1, policy=BOTH):
    record_answers(
        user.id, [(template_id, status)], source=source, occurred_at=when or utcnow(), policy=policy
    )
    db.session.commit()


def assert_ledger_explains_balances(user):
    for row in db.session.scalars(select(GrantBalance).where(GrantBalance.user_id == user.id)):
        total = sum(e.credit_delta for e in events(user) if e.template_id == row.template_id)
        assert total == row.credits >= 0


@pytest.mark.parametrize("status", ["accept", "acceptWithAudio", "acceptWithAlert"])
def test_each_kind_of_accept_adds_one_credit(make_user, status):
    user = make_user()
    answer(user, "client", status)
    answer(user, "client", status)
    assert balance(user).credits == 2
    assert_ledger_explains_balances(user)


@pytest.mark.parametrize("first,second", [("client", "popup_event"), ("popup_event", "client")])
def test_the_report_and_the_popup_event_of_one_prompt_count_once(make_user, first, second):
    user = make_user()
    now = utcnow()
    answer(user, first, when=now)
    answer(user, second, when=now + timedelta(seconds=3))
    assert balance(user).credits == 1
    first_event, second_event = events(user)
    assert second_event.pairs_with_id == first_event.id and second_event.note == "paired"
    assert_ledger_explains_balances(user)


def test_two_prompts_reported_twice_each_give_two_credits_in_any_order(make_user):
    user = make_user()
    now = utcnow()
    answer(user, "client", when=now)
    answer(user, "client", when=now + timedelta(seconds=1))
    answer(user, "popup_event", when=now)
    answer(user, "popup_event", when=now + timedelta(seconds=1))
    assert balance(user).credits == 2
    assert [e.pairs_with_id is not None for e in events(user)] == [False, False, True, True]


def test_a_lost_client_report_still_counts_through_the_event(make_user):
    user = make_user()
    now = utcnow()
    answer(user, "popup_event", when=now)  # prompt 1: its client report never arrives
    answer(user, "client", when=now + timedelta(seconds=30))  # prompt 2, reported by the client
    answer(user, "popup_event", when=now + timedelta(seconds=30))  # prompt 2's event
    assert balance(user).credits == 2


def test_answers_outside_the_pairing_window_are_separate_prompts(make_user):
    user = make_user()
    now = utcnow()
    answer(user, "client", when=now)
    answer(user, "popup_event", when=now + timedelta(minutes=11))
    assert balance(user).credits == 2


def test_a_reject_does_not_pair_with_an_accept(make_user):
    user = make_user()
    now = utcnow()
    answer(user, "client", "accept", when=now)
    answer(user, "popup_event", "reject", when=now)
    answer(user, "popup_event", "accept", when=now)
    assert balance(user).credits == 1
    assert events(user)[1].pairs_with_id is None and events(user)[2].pairs_with_id == events(user)[0].id


def test_which_sources_grant_credit_is_a_setting(make_user):
    user = make_user()
    events_only = LedgerPolicy(
        pairing_window=timedelta(minutes=10), credit_sources=frozenset({"popup_event"})
    )
    now = utcnow()
    answer(user, "client", when=now, policy=events_only)
    assert balance(user).credits == 0 and events(user)[0].note == "source_not_crediting"
    answer(user, "popup_event", when=now, policy=events_only)
    assert balance(user).credits == 1
    assert events(user)[1].pairs_with_id == events(user)[0].id


def test_the_settings_come_from_the_config(app):
    app.config.update(GRANT_PAIRING_WINDOW_SECONDS=5, GRANT_CREDIT_SOURCES=("client",))
    with app.app_context():
        policy = LedgerPolicy.from_config()
    assert policy == LedgerPolicy(pairing_window=timedelta(seconds=5), credit_sources=frozenset({"client"}))


@pytest.mark.parametrize("status", ["ban", "filter", "reject"])
def test_ban_filter_and_a_prompt_reject_grant_nothing_and_take_nothing(make_user, status):
    user = make_user()
    answer(user, "client", "accept")
    answer(user, "client", status)
    row = balance(user)
    assert row.credits == 1 and row.last_status == status
    assert [e.status for e in events(user)] == ["accept", status]


def test_a_reject_change_event_zeroes_the_credits(make_user):
    user = make_user()
    for _ in range(3):
        answer(user, "client")
    answer(user, "client", template_id=T2)
    answer(user, "change_event", "reject")
    assert balance(user).credits == 0 and balance(user, T2).credits == 1
    withdrawal = events(user)[-1]
    assert (withdrawal.source, withdrawal.credit_delta, withdrawal.credits_after) == ("change_event", -3, 0)
    assert_ledger_explains_balances(user)


def test_unknown_templates_are_recorded_as_one_time_and_flagged(make_user):
    user = make_user()
    answer(user, "client", template_id="NOT_IN_THE_CATALOG")
    row = balance(user, "NOT_IN_THE_CATALOG")
    assert (row.kind, row.template_known, row.credits) == ("one_time", False, 1)
    assert events(user)[0].template_known is False


def test_a_long_term_template_from_the_catalog_is_active_or_not(make_user):
    catalog = pytest.importorskip("dashboard.models.catalog")
    user = make_user()
    db.session.add(
        catalog.MessageTemplate(
            template_id="LONG_TERM_T",
            title="停车缴费提醒",
            kind=catalog.TemplateKind.long_term,
            content="{{thing1.DATA}}",
            source=catalog.TemplateSource.manual,
        )
    )
    db.session.commit()
    answer(user, "client", "accept", template_id="LONG_TERM_T")
    row = balance(user, "LONG_TERM_T")
    assert (row.kind, row.template_known, row.active, row.credits) == ("long_term", True, True, 0)
    assert services.has_live_grant(user.id, "LONG_TERM_T")
    answer(user, "popup_event", "reject", template_id="LONG_TERM_T")
    assert balance(user, "LONG_TERM_T").active is False
    assert not services.has_live_grant(user.id, "LONG_TERM_T")


def test_one_report_naming_templates_in_any_order_is_recorded_in_its_order(make_user):
    user = make_user()
    record_answers(user.id, [(T2, "accept"), (T1, "reject")], source="client", policy=BOTH)
    db.session.commit()
    assert [(e.template_id, e.status) for e in events(user)] == [(T2, "accept"), (T1, "reject")]


def test_unknown_statuses_and_send_results_are_refused(make_user):
    user = make_user()
    with pytest.raises(ValueError):
        record_answers(user.id, [(T1, "maybe")], source="client", policy=BOTH)
    with pytest.raises(ValueError):
        record_answers(user.id, [(T1, "accept")], source="send_result", policy=BOTH)


def test_live_grant_figures_count_users_per_template(make_user):
    alice, bob = make_user("o_alice"), make_user("o_bob")
    answer(alice, "client", template_id=T1)
    answer(alice, "client", template_id=T2)
    answer(bob, "client", template_id=T1)
    answer(bob, "client", "reject", template_id=T2)
    figures = services.live_grant_figures()
    assert figures.users == 2 and figures.by_template == [(T1, 2), (T2, 1)]
