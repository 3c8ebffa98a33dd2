"""Watching a campaign run: the progress card's figures come from SQL and add up, failures and skips are
named in words, the rate and ETA (or what holds the campaign), polling that stops once it is final, and
why a campaign is paused or waits, in the operator's language on the page and in English in the API."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.campaigns import report, services
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryAttempt, DeliveryState
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.catalog import MessageTemplate
from dashboard.models.types import utcnow
from tests.campaigns.helpers import campaign, prepared_campaign

# What each recipient's row becomes, in the order of their ids (the snapshot's order).
OUTCOMES = [
    {"state": "sent", "sent_in": 10},
    {"state": "sent", "sent_in": 20},
    {"state": "sent", "sent_in": 30},
    {"state": "sent", "sent_in": 600},  # outside the rate window
    {"state": "failed", "reason": "content", "errcode": 47003},
    {"state": "failed", "reason": "content", "errcode": 47003},
    {"state": "failed", "reason": "gave_up", "errcode": -1},
    {"state": "failed", "reason": "gave_up", "errcode": None, "attempt_category": "config"},
    {"state": "failed", "reason": "no_grant", "errcode": 43101},
    {"state": "skipped", "reason": "no_grant"},
    {"state": "skipped", "reason": "budget"},
    {"state": "unknown", "reason": "unknown"},
    {"state": "pending"},
    {"state": "retry_wait", "reason": "transient", "errcode": -1},
]


def shape(app, campaign_id: int, outcomes=OUTCOMES, now=None) -> list[int]:
    """Give the campaign's rows the ``outcomes`` (as the engine would have left them)."""
    now = now or utcnow()
    with app.app_context():
        ids = list(
            db.session.scalars(
                sa.select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
            )
        )
        assert len(ids) >= len(outcomes)
        for delivery_id, outcome in zip(ids, outcomes, strict=False):
            outcome = dict(outcome)
            sent_in = outcome.pop("sent_in", None)
            category = outcome.pop("attempt_category", None)
            values = {"reason": "", "errcode": None, **outcome, "updated_at": now - timedelta(seconds=5)}
            if sent_in is not None:
                values["sent_at"] = now - timedelta(seconds=sent_in)
                values["updated_at"] = values["sent_at"]
            if outcome["state"] != "pending":
                values["attempts"] = 8 if outcome.get("reason") == "gave_up" else 1
            db.session.execute(sa.update(Delivery).where(Delivery.id == delivery_id).values(**values))
            if category:
                db.session.add(
                    DeliveryAttempt(
                        delivery_id=delivery_id,
                        number=8,
                        outcome=DeliveryState.failed,
                        category=category,
                        errmsg="proxy refused",
                    )
                )
        db.session.commit()
    return ids


def started(app, sandbox, template, count=14, **fields) -> int:
    campaign_id, _ = prepared_campaign(app, sandbox, template, count, **fields)
    with app.app_context():
        services.launch(campaign_id, now=utcnow() - timedelta(minutes=5))
    return campaign_id


def test_the_figures_add_up_name_each_failure_and_skip_and_give_a_rate(app, sandbox, template):
    campaign_id = started(app, sandbox, template)
    shape(app, campaign_id)
    with app.app_context():
        row = db.session.get(Campaign, campaign_id)
        statements = []
        listen = sa.event.listens_for(db.engine, "before_cursor_execute")(
            lambda conn, cursor, statement, *args: statements.append(statement)
        )
        try:
            f = report.figures(row)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)
        # Counted by the database, not by loading rows: one grouped query (plus the quota check).
        assert sum("GROUP BY" in s for s in statements) == 1 and len(statements) <= 2
        counts = services.counts(row)
        assert (f.recipients, f.pending, f.sent, f.failed, f.skipped, f.unknown, f.opens) == (
            counts["recipients"],
            counts["pending"],
            counts["sent"],
            counts["failed"],
            counts["skipped"],
            counts["unknown"],
            counts["opens"],
        )
        assert (f.sent, f.failed, f.skipped, f.unknown, f.pending) == (4, 5, 2, 1, 2)
        assert f.done + f.pending == f.recipients == 14 and f.percent == 12 * 100 // 14
        assert [(o.key, o.errcode, o.count) for o in f.failed_by] == [
            ("content", 47003, 2),
            ("config", None, 1),
            ("no_grant", 43101, 1),
            ("transient", -1, 1),
        ]
        assert {o.key: o.count for o in f.skipped_by} == {"no_grant": 1, "budget": 1}
        assert f.retryable == 2  # the transient -1 and the config one, never content or no_grant
        # 3 sent + 5 failed + 1 unknown answered within the last minute (updated 5 s ago), one sent 10 min ago.
        assert f.recent == 9 and f.window_seconds == 60
        assert f.status == "eta" and f.eta_seconds == round(2 / (9 / 60))


def test_the_page_names_failures_and_skips_in_words_in_both_languages(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template)
    shape(app, campaign_id)
    auth.login("viewer")
    fragment = client.get(f"/campaigns/{campaign_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and 'id="campaign-progress"' in fragment
    assert (
        "内容不合规 (47003)" in fragment and "无可发送次数" in fragment and "次数保留给单条发送" in fragment
    )
    assert "no_grant" not in fragment.replace('data-failed="no_grant', "").replace(
        'data-skipped="no_grant', ""
    )
    assert "预计剩余" in fragment and 'hx-trigger="every 5s"' in fragment
    assert 'data-count="remaining">2<' in fragment and 'data-count="sent">4<' in fragment
    client.post("/language/en")
    english = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Content breaks the rules (47003)" in english and "No credit left" in english
    assert "ETA: under a minute" in english and "sends/s" in english


def test_quiet_hours_a_pause_and_the_schedule_replace_the_eta(app, client, auth, sandbox, template):
    zone = ZoneInfo(app.config["TIMEZONE"])
    local = utcnow().astimezone(zone)
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0, tzinfo=None)
    end = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0, tzinfo=None)
    quiet = started(app, sandbox, template, 3, quiet_start=start, quiet_end=end)
    auth.login("viewer")
    page = client.get(f"/campaigns/{quiet}").get_data(as_text=True)
    assert f"免打扰时段暂停发送，直到 {end.strftime('%H:%M')}" in page
    with app.app_context():
        services.pause(quiet)
    page = client.get(f"/campaigns/{quiet}").get_data(as_text=True)
    assert "已暂停：继续之前不会发送" in page and "暂停原因：由操作员暂停。" in page
    assert 'hx-trigger="every 5s"' in page  # a paused campaign may resume by itself (the quota)


def test_polling_stops_once_final_and_a_changed_state_reloads_the_page(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template, 3)
    auth.login("viewer")
    hx = {"HX-Request": "true"}
    assert 'hx-trigger="every 5s"' in client.get(f"/campaigns/{campaign_id}", headers=hx).get_data(
        as_text=True
    )
    shape(app, campaign_id, [{"state": "sent", "sent_in": 1}] * 3)
    with app.app_context():
        assert services.supervise().completed == 1
    moved = client.get(f"/campaigns/{campaign_id}?seen=running", headers=hx)
    assert moved.headers.get("HX-Refresh") == "true"
    final = client.get(f"/campaigns/{campaign_id}?seen=completed", headers=hx).get_data(as_text=True)
    assert "hx-trigger" not in final and "100%" in final


def test_pause_reasons_are_codes_said_in_words_and_in_english_by_the_api(
    app, client, auth, sandbox, template
):
    campaign_id = started(app, sandbox, template, 60)
    ids = shape(app, campaign_id, [{"state": "failed", "reason": "content", "errcode": 47003}] * 30)
    with app.app_context():
        db.session.execute(sa.update(Delivery).where(Delivery.id.in_(ids[30:55])).values(state="sent"))
        db.session.commit()
        assert services.supervise().paused == 1
    row = campaign(app, campaign_id)
    assert (row.hold_code, row.hold_args) == ("failure_rate", {"failed": 30, "answered": 55, "threshold": 20})
    assert row.pause_reason == "30 of 55 sends failed, more than the 20% allowed."
    auth.login("viewer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "暂停原因：已应答的 55 次发送中有 30 次失败，超过允许的 20%。" in page
    assert "sends failed" not in page
    with app.app_context():
        services.resume(campaign_id)
    assert (campaign(app, campaign_id).hold_code, campaign(app, campaign_id).pause_reason) == ("", "")


def test_a_scheduled_campaign_whose_template_became_unusable_says_why_it_waits(
    app, client, auth, sandbox, template
):
    at = utcnow() + timedelta(minutes=10)
    campaign_id, _ = prepared_campaign(app, sandbox, template, 3, scheduled_at=at)
    with app.app_context():
        services.launch(campaign_id)
        db.session.execute(
            sa.update(MessageTemplate)
            .where(MessageTemplate.template_id == template["priTmplId"])
            .values(enabled=False)
        )
        db.session.commit()
        assert services.supervise(now=at + timedelta(seconds=1)).started == 0
    row = campaign(app, campaign_id)
    assert row.state == CampaignState.scheduled
    assert (row.hold_code, row.hold_args) == ("template", {"why": "disabled"})
    assert row.pause_reason == "Waiting: the template cannot be used now (disabled)."
    auth.login("viewer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "等待中：模板当前不可用（已停用）。" in page and "上述问题解决后开始发送" in page
    listed = client.get("/campaigns/?state=scheduled").get_data(as_text=True)
    assert "等待中：模板当前不可用（已停用）。" in listed  # the list says why it has not started either
    with app.app_context():
        db.session.execute(
            sa.update(MessageTemplate)
            .where(MessageTemplate.template_id == template["priTmplId"])
            .values(enabled=True)
        )
        db.session.commit()
        assert services.supervise(now=at + timedelta(seconds=2)).started == 1
    assert campaign(app, campaign_id).hold_code == ""


def test_every_hold_sentence_is_the_msgid_the_page_translates(app):
    from flask_babel import force_locale

    from dashboard.models.campaign import HOLD_REASONS, TEMPLATE_PROBLEMS

    with app.test_request_context(), force_locale("en"):
        assert {code: str(text) for code, text in report.HOLD_TEXT.items()} == HOLD_REASONS
        assert {k: str(v) for k, v in report.TEMPLATE_PROBLEM_TEXT.items()} == TEMPLATE_PROBLEMS
