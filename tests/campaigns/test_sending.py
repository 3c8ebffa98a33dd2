"""Campaigns through the real dispatch engine (a Dispatcher against the sandbox, a real database)."""

from __future__ import annotations

import collections
import time as time_module
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.deliveries.opens import TOKEN_RE, record_open
from dashboard.dispatch.claim import claim_due, load_dispatch_state
from dashboard.dispatch.finalize import finalize
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState, WechatUser
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.types import utcnow
from tests.campaigns.helpers import (
    campaign,
    campaign_states,
    draft,
    fixed_data,
    granted_users,
    prepared_campaign,
    segment_of_grantees,
)


def delivered(sandbox) -> collections.Counter:
    return collections.Counter(m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0)


def test_a_campaign_sends_once_to_each_recipient_and_completes(app, sandbox, template, dispatcher):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 12)
    with app.app_context():
        assert services.launch(campaign_id).state == CampaignState.running
    dispatcher.drain(20)
    assert campaign_states(app, campaign_id) == {"sent": 12}
    assert delivered(sandbox) == collections.Counter(openids)
    with app.app_context():
        assert services.supervise().completed == 1
        row = db.session.get(Campaign, campaign_id)
        assert row.state == CampaignState.completed and row.finished_at is not None
        assert services.counts(row) == {
            "recipients": 12,
            "pending": 0,
            "sent": 12,
            "failed": 0,
            "skipped": 0,
            "unknown": 0,
            "opens": 0,
            "sent_by_channel": {"mp_subscribe": 12, "oa_template": 0},
        }


def test_a_user_who_accepts_after_launch_is_not_added(app, sandbox, template, dispatcher):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 5)
    late = sandbox.openids_all()[5]
    with app.app_context():
        services.launch(campaign_id)
    granted_users(app, sandbox, template, [late])  # accepts after the start: WeChat and we know it
    dispatcher.drain(20)
    with app.app_context():
        services.supervise()
    assert set(delivered(sandbox)) == set(openids)
    assert campaign_states(app, campaign_id) == {"sent": 5}
    assert campaign(app, campaign_id).state == CampaignState.completed


def test_user_variables_are_filled_per_user_with_a_fallback(app, sandbox, template, dispatcher):
    openids = sandbox.openids_all()[:3]
    granted_users(app, sandbox, template, openids)
    with app.app_context():
        users = {u.openid: u for u in db.session.scalars(sa.select(WechatUser))}
        users[openids[0]].nickname = "小明"
        users[openids[0]].attributes = {"city": "上海"}
        users[openids[1]].attributes = {"city": "北京"}
        db.session.commit()
    data = {
        **fixed_data(template),
        "thing2": {"value": "{{user.nickname}}{{user.attributes.city}}的订单", "fallback": "您的订单"},
    }
    campaign_id = draft(app, template, segment_of_grantees(app, template), data=data)
    with app.app_context():
        services.launch(campaign_id)
    dispatcher.drain(20)
    sent = {m["openid"]: m["data"]["thing2"]["value"] for m in sandbox.messages_all() if m["errcode"] == 0}
    # Both variables must be filled; a user missing either gets the fallback.
    assert sent == {openids[0]: "小明上海的订单", openids[1]: "您的订单", openids[2]: "您的订单"}


def test_quiet_hours_hold_sending_until_they_end(app, sandbox, template, dispatcher):
    zone = ZoneInfo(app.config["TIMEZONE"])
    local = utcnow().astimezone(zone)
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0, tzinfo=None)
    end = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0, tzinfo=None)
    campaign_id, openids = prepared_campaign(app, sandbox, template, 6, quiet_start=start, quiet_end=end)
    with app.app_context():
        services.launch(campaign_id)
    dispatcher.drain(5)
    assert campaign_states(app, campaign_id) == {"pending": 6} and not delivered(sandbox)
    # Two hours on, the quiet hours are over: the claim takes the rows.
    later = utcnow() + timedelta(hours=2)
    with app.app_context():
        batch = claim_due(db.engine, grants_ledger(), 8, now=later)
    assert len(batch.claims) == 6


def test_quiet_hours_span_midnight():
    from dashboard.dispatch.campaign_gate import in_quiet_hours

    zone = "Asia/Shanghai"

    def at(hour):
        return datetime(2026, 12, 2, hour, 30, tzinfo=ZoneInfo(zone))

    window = (time(21, 0), time(8, 0))
    assert [in_quiet_hours(*window, zone, at(h)) for h in (20, 21, 23, 0, 7, 8)] == [
        False,
        True,
        True,
        True,
        True,
        False,
    ]


def test_pause_resume_and_cancel_with_a_real_dispatcher(app, sandbox, template, dispatcher):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 30)
    with app.app_context():
        services.launch(campaign_id)
        services.pause(campaign_id)
    dispatcher.drain(5)
    assert campaign_states(app, campaign_id) == {"pending": 30} and not delivered(sandbox)
    assert campaign(app, campaign_id).pause_reason == services.REASON_OPERATOR

    with app.app_context():
        services.resume(campaign_id)
    assert dispatcher.run_once().claimed == 8
    # A batch is claimed (in flight) when the campaign is cancelled: it finishes and is recorded;
    # everything not yet claimed is skipped.
    with app.app_context():
        batch = claim_due(db.engine, grants_ledger(), 8)
        assert len(batch.claims) == 8
        services.cancel(campaign_id)
        finalize(db.engine, grants_ledger(), dispatcher.sender.send(batch.claims))
    dispatcher.drain(5)
    assert campaign_states(app, campaign_id) == {"sent": 16, "skipped": 14}
    assert sum(delivered(sandbox).values()) == 16
    with app.app_context():
        reasons = set(
            db.session.scalars(sa.select(Delivery.reason).where(Delivery.state == DeliveryState.skipped))
        )
        assert reasons == {"cancelled"}
        row = db.session.get(Campaign, campaign_id)
        counts = services.counts(row)
        assert row.state == CampaignState.cancelled
        assert (
            counts["pending"] + counts["sent"] + counts["failed"] + counts["skipped"] + counts["unknown"]
            == 30
        )


def test_a_campaign_rate_caps_its_rows_per_second(app, sandbox, template):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 10, rate_per_second=3)
    with app.app_context():
        services.launch(campaign_id)
        now = utcnow()
        first = claim_due(db.engine, grants_ledger(), 8, now=now)
        second = claim_due(db.engine, grants_ledger(), 8, now=now)
        third = claim_due(db.engine, grants_ledger(), 8, now=now + timedelta(seconds=1))
    assert (len(first.claims), len(second.claims), second.rate_limited, len(third.claims)) == (3, 0, True, 3)


def test_a_scheduled_campaign_starts_at_its_time(app, sandbox, template):
    at = utcnow() + timedelta(minutes=10)
    campaign_id, openids = prepared_campaign(app, sandbox, template, 4, scheduled_at=at)
    with app.app_context():
        assert services.launch(campaign_id).state == CampaignState.scheduled
        assert services.supervise().started == 0
    assert campaign_states(app, campaign_id) == {}
    with app.app_context():
        assert services.supervise(now=at + timedelta(seconds=1)).started == 1
    assert campaign_states(app, campaign_id) == {"pending": 4}
    assert campaign(app, campaign_id).state == CampaignState.running


def test_a_quota_pause_or_a_high_failure_rate_pauses_the_campaign_with_its_reason(app, sandbox, template):
    first, _ = prepared_campaign(app, sandbox, template, 60)
    with app.app_context():
        services.launch(first)
        with write_transaction(db.engine) as session:
            load_dispatch_state(session, lock=True).paused_until = utcnow() + timedelta(hours=1)
        assert services.supervise().paused == 1
        assert db.session.get(Campaign, first).pause_reason == services.REASON_QUOTA
        assert services.supervise().paused == 0  # still out of quota: it stays paused
        with write_transaction(db.engine) as session:
            load_dispatch_state(session, lock=True).paused_until = None
        # Sending resumes (WeChat's next day, or "Resume now"): so does the campaign.
        services.supervise()
        assert db.session.get(Campaign, first, populate_existing=True).state == CampaignState.running
        # 30 of 55 answered sends failed (more than 20%): paused with the figures.
        ids = db.session.scalars(
            sa.select(Delivery.id).where(Delivery.campaign_id == first).order_by(Delivery.id)
        )
        ids = list(ids)
        db.session.execute(
            sa.update(Delivery).where(Delivery.id.in_(ids[:30])).values(state=DeliveryState.failed)
        )
        db.session.execute(
            sa.update(Delivery).where(Delivery.id.in_(ids[30:55])).values(state=DeliveryState.sent)
        )
        db.session.commit()
        assert services.supervise().paused == 1
        row = db.session.get(Campaign, first, populate_existing=True)
        assert row.state == CampaignState.paused and row.pause_reason.startswith("30 of 55 sends failed")


def test_rows_of_a_campaign_id_without_a_campaign_still_send(app, sandbox, template, dispatcher):
    """The benchmark seeds campaign deliveries with no campaign row: the gate must not hold them."""
    from tests.dispatch.helpers import prepare

    prepare(app, sandbox, 5, template)
    dispatcher.drain(10)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Delivery.state == DeliveryState.sent)) == 5


def test_the_workers_tick_starts_sends_and_completes_a_scheduled_campaign(app, sandbox, template):
    campaign_id, openids = prepared_campaign(
        app, sandbox, template, 5, scheduled_at=utcnow() + timedelta(seconds=1)
    )
    with app.app_context():
        assert services.launch(campaign_id).state == CampaignState.scheduled
    tick = app.extensions["dispatch_tasks"].tick
    time_module.sleep(1.1)
    tick.call_local()  # the hook starts it (the snapshot), then the drain sends it
    assert campaign_states(app, campaign_id) == {"sent": 5}
    tick.call_local()  # nothing left to send: completed
    assert campaign(app, campaign_id).state == CampaignState.completed
    assert set(delivered(sandbox)) == set(openids)


def test_values_edited_while_paused_go_to_the_recipients_not_yet_sent(app, sandbox, template, dispatcher):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 12)
    with app.app_context():
        services.launch(campaign_id)
    assert dispatcher.run_once().claimed == 8
    with app.app_context():
        services.pause(campaign_id)
        db.session.execute(sa.update(WechatUser).values(nickname="U" + sa.cast(WechatUser.id, sa.String)))
        row = db.session.get(Campaign, campaign_id)
        services.update_campaign(
            row,
            {
                "data": {
                    **fixed_data(template),
                    "thing2": {"value": "{{user.nickname}}的订单", "fallback": "x"},
                }
            },
        )
        services.resume(campaign_id)
    dispatcher.drain(10)
    sent = {m["openid"]: m["data"]["thing2"]["value"] for m in sandbox.messages_all() if m["errcode"] == 0}
    assert len(sent) == 12
    edited = {openid for openid, value in sent.items() if value.startswith("U") and value.endswith("的订单")}
    assert len(edited) == 4  # the 4 not yet sent when it was paused, each with their own nickname


def test_each_recipient_gets_its_own_open_token_on_the_page_and_an_open_counts(
    app, sandbox, template, dispatcher
):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 6, page="pages/order/detail?id=7")
    with app.app_context():
        services.launch(campaign_id)
    dispatcher.drain(20)
    assert campaign_states(app, campaign_id) == {"sent": 6}
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.user_id, Delivery.open_token, Delivery.page).where(
                Delivery.campaign_id == campaign_id
            )
        ).all()
        tokens = [row.open_token for row in rows]
        assert len(set(tokens)) == 6 and all(TOKEN_RE.fullmatch(token) for token in tokens)
        assert {row.page for row in rows} == {f"pages/order/detail?id=7&tz={token}" for token in tokens}
        assert record_open(rows[0].user_id, rows[0].open_token)
        db.session.commit()
        assert services.counts(db.session.get(Campaign, campaign_id))["opens"] == 1
    # WeChat got each user's own tracked page.
    sent_pages = {m["openid"]: m["page"] for m in sandbox.messages_all() if m["errcode"] == 0}
    assert sorted(sent_pages.values()) == sorted(row.page for row in rows)


def test_a_campaign_without_a_page_has_no_open_tokens(app, sandbox, template):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 3, page="")
    with app.app_context():
        services.launch(campaign_id)
        rows = db.session.execute(
            sa.select(Delivery.open_token, Delivery.page).where(Delivery.campaign_id == campaign_id)
        ).all()
    assert len(rows) == 3 and all(row.open_token is None and not row.page for row in rows)


def test_a_page_that_cannot_take_the_open_token_is_refused_when_composed(app, sandbox, template):
    granted_users(app, sandbox, template, [])  # the template is in the catalog
    segment_id = segment_of_grantees(app, template)
    with app.app_context():
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign(
                {
                    "name": "tracked twice",
                    "template_id": template["priTmplId"],
                    "segment_id": segment_id,
                    "data": fixed_data(template),
                    "page": "pages/order/detail?tz=mine",
                }
            )
    assert refused.value.field == "page"
