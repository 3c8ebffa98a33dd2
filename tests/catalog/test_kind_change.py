"""A template whose kind changes converts its balances, each with a ledger event (issue 10, item 5).

One-time → long-term: a balance becomes active when its last answer was an accept; its credits end.
Long-term → one-time: the active grant ends with 0 credits. Every balance still equals its events.
"""

from __future__ import annotations

from sqlalchemy import select

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.catalog.services import register_manual
from dashboard.extensions import db
from dashboard.grants.services import has_live_grant, record_answers
from dashboard.models import WechatUser
from dashboard.models.grants import GrantBalance, GrantEvent

from .test_sync import change_in_sandbox


def make_user(openid: str) -> int:
    user = WechatUser(openid=openid, nickname="", tags=[], attributes={})
    db.session.add(user)
    db.session.commit()
    return user.id


def answer(user_id: int, template_id: str, *statuses: str) -> None:
    for status in statuses:
        record_answers(user_id, [(template_id, status)], source="client")
    db.session.commit()


def balance(user_id: int, template_id: str) -> GrantBalance:
    return db.session.scalars(
        select(GrantBalance)
        .where(GrantBalance.user_id == user_id, GrantBalance.template_id == template_id)
        .execution_options(populate_existing=True)
    ).one()


def events(user_id: int, template_id: str) -> list[GrantEvent]:
    return list(
        db.session.scalars(
            select(GrantEvent)
            .where(GrantEvent.user_id == user_id, GrantEvent.template_id == template_id)
            .order_by(GrantEvent.id)
        )
    )


def assert_every_balance_equals_its_events() -> None:
    for row in db.session.scalars(select(GrantBalance).execution_options(populate_existing=True)):
        found = events(row.user_id, row.template_id)
        assert sum(e.credit_delta for e in found) == row.credits >= 0, row
        last = found[-1]
        assert (last.credits_after, last.active_after, last.kind) == (row.credits, row.active, row.kind), row


def test_a_sync_that_changes_a_templates_type_converts_its_balances(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    catalog.sync()
    one_time = sandbox.templates(type_=2)[0]["priTmplId"]
    long_term = sandbox.templates(type_=3)[0]["priTmplId"]
    with app.app_context():
        holder, refuser = make_user("o_holder"), make_user("o_refuser")
        subscriber, unsubscribed = make_user("o_subscriber"), make_user("o_unsubscribed")
        answer(holder, one_time, "accept", "accept")  # 2 credits, last answer accept
        answer(refuser, one_time, "accept", "reject")  # 1 credit, last answer reject
        answer(subscriber, long_term, "accept")  # active
        answer(unsubscribed, long_term, "accept", "reject")  # inactive
    change_in_sandbox(sandbox, one_time, type=3)
    change_in_sandbox(sandbox, long_term, type=2)

    catalog.sync()

    with app.app_context():
        row = balance(holder, one_time)
        assert (row.kind, row.credits, row.active) == ("long_term", 0, True)
        assert has_live_grant(holder, one_time)
        row = balance(refuser, one_time)
        assert (row.kind, row.credits, row.active) == ("long_term", 0, False)
        assert not has_live_grant(refuser, one_time)
        for user_id in (subscriber, unsubscribed):
            row = balance(user_id, long_term)
            assert (row.kind, row.credits, row.active) == ("one_time", 0, False)
            assert not has_live_grant(user_id, long_term)

        change = events(holder, one_time)[-1]
        assert (change.source, change.status, change.credit_delta) == ("catalog", "kind_changed", -2)
        assert (change.kind, change.credits_after, change.active_after) == ("long_term", 0, True)
        assert change.note == "one_time→long_term: catalog sync"
        assert events(refuser, one_time)[-1].credit_delta == -1
        ended = events(subscriber, long_term)[-1]
        assert (ended.status, ended.credit_delta, ended.active_after) == ("kind_changed", 0, False)
        assert ended.note == "long_term→one_time: catalog sync"
        assert_every_balance_equals_its_events()

        # The audit event of the change says how many balances moved.
        [changed] = db.session.scalars(
            filtered_events(AuditFilter(action="template.changed_in_wechat"))
        ).all()[:1]
        assert changed.detail["balances_converted"] == 2

        # The user's page names the event in the operator's words.
        page = client.get(f"/users/{holder}").get_data(as_text=True)
        assert "模板类型已变更" in page and "one_time→long_term: catalog sync" in page

        # After the conversion the ledger works in the new kind: an accept adds one credit.
        answer(subscriber, long_term, "accept")
        assert balance(subscriber, long_term).credits == 1
        assert_every_balance_equals_its_events()


def test_a_second_sync_converts_nothing_again(app, auth, sandbox, catalog):
    auth.login("marketer")
    catalog.sync()
    one_time = sandbox.templates(type_=2)[0]["priTmplId"]
    with app.app_context():
        holder = make_user("o_holder")
        answer(holder, one_time, "accept")
    change_in_sandbox(sandbox, one_time, type=3)
    catalog.sync()
    catalog.sync()
    with app.app_context():
        kinds = [e.status for e in events(holder, one_time)]
        assert kinds == ["accept", "kind_changed"]


def test_registering_a_long_term_template_converts_the_balances_it_had_while_unknown(app):
    with app.app_context():
        user_id = make_user("o_early")
        answer(user_id, "T_REGISTERED_LATER", "accept")  # unknown: recorded as one-time, 1 credit
        assert balance(user_id, "T_REGISTERED_LATER").kind == "one_time"
        register_manual(
            template_id="T_REGISTERED_LATER",
            title="停车缴费提醒",
            kind="long_term",
            content="{{thing1.DATA}}",
        )
        db.session.commit()
        row = balance(user_id, "T_REGISTERED_LATER")
        assert (row.kind, row.template_known, row.credits, row.active) == ("long_term", True, 0, True)
        assert events(user_id, "T_REGISTERED_LATER")[-1].note == "one_time→long_term: registered"
        assert_every_balance_equals_its_events()


def test_an_answer_to_a_balance_whose_kind_lags_the_catalog_converts_it_first(app):
    """A balance written in a race with a conversion still changes kind only through an event."""
    with app.app_context():
        user_id = make_user("o_racer")
        register_manual(
            template_id="T_LONG", title="停车缴费提醒", kind="long_term", content="{{thing1.DATA}}"
        )
        db.session.commit()
        # What a report that read the catalog before the registration committed would have left.
        db.session.add(
            GrantBalance(user_id=user_id, template_id="T_LONG", kind="one_time", credits=0, last_status="")
        )
        db.session.commit()
        answer(user_id, "T_LONG", "accept")
        row = balance(user_id, "T_LONG")
        assert (row.kind, row.active) == ("long_term", True)
        assert [e.status for e in events(user_id, "T_LONG")] == ["kind_changed", "accept"]
