"""Composing campaigns in the browser's forms: the service's checks shown per field, the schedule in the
operator's zone, what each state lets an operator edit, test sends outside the campaign, duplicates, and
who may do any of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

import flask_login
import sqlalchemy as sa
from flask import render_template

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models import AuditEvent, Delivery, DeliverySource, DeliveryState, Operator
from dashboard.models.campaign import Campaign, CampaignState
from tests.campaigns.helpers import (
    campaign,
    draft,
    fixed_data,
    granted_users,
    prepared_campaign,
    segment_of_grantees,
)
from tests.dispatch.helpers import balance
from tests.sandbox_api import example_data


def form_for(template: dict, segment_id: int, **overrides) -> dict[str, str]:
    """The compose form as a browser posts it: every keyword as fixed text (the sandbox's example)."""
    data = {
        "name": "Autumn sale",
        "template_id": template["priTmplId"],
        "segment_id": str(segment_id),
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "when": "now",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
    }
    for key, value in example_data(template).items():
        data[f"source-{key}"] = "text"
        data[f"value-{key}"] = value
    data.update(overrides)
    return data


def campaigns(app) -> list[Campaign]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Campaign).order_by(Campaign.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def a_thing_key(template: dict) -> str:
    return next(key for key in example_data(template) if key.startswith("thing"))


def test_a_value_that_can_never_pass_is_a_form_error_naming_the_keyword(app, client, auth, sandbox, template):
    openids = sandbox.openids_all()[:2]
    granted_users(app, sandbox, template, openids)
    segment_id = segment_of_grantees(app, template)
    key = a_thing_key(template)
    auth.login("marketer")

    refused = client.post(
        "/campaigns/new", data=form_for(template, segment_id, **{f"value-{key}": "长" * 40})
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    # The service's refusal (the API's 422), next to the keyword's own field, in Chinese.
    error = re.search(rf'data-key="{key}".*?<p class="error kw-error"[^>]*>([^<]+)</p>', page, re.S)
    assert error and key in error.group(1) and "不符合" in error.group(1)
    assert "长" * 40 in page  # what was typed is kept
    assert campaigns(app) == []

    saved = client.post(
        "/campaigns/new",
        data=form_for(template, segment_id, quiet_hours="y", rate_per_second="7", page="pages/sale/index"),
    )
    (created,) = campaigns(app)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/campaigns/{created.id}")
    assert created.state == CampaignState.draft and created.scheduled_at is None
    assert created.data == fixed_data(template)
    assert (created.quiet_start, created.quiet_end, created.rate_per_second) == (time(21), time(8), 7)
    assert created.page == "pages/sale/index"


def test_a_schedule_typed_in_shanghai_is_stored_in_utc_and_shown_back_in_shanghai(
    app, client, auth, sandbox, template
):
    assert app.config["TIMEZONE"] == "Asia/Shanghai"
    granted_users(app, sandbox, template, sandbox.openids_all()[:1])
    segment_id = segment_of_grantees(app, template)
    auth.login("marketer")
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert "发送时间（Asia/Shanghai 时间）" in page  # the zone is named next to the field

    past = client.post(
        "/campaigns/new",
        data=form_for(template, segment_id, when="schedule", scheduled_at="2020-01-01T09:00"),
    )
    assert past.status_code == 200 and "该时间已过" in past.get_data(as_text=True)
    assert campaigns(app) == []

    client.post(
        "/campaigns/new",
        data=form_for(template, segment_id, when="schedule", scheduled_at="2030-03-01T09:30"),
    )
    (created,) = campaigns(app)
    assert created.scheduled_at == datetime(2030, 3, 1, 1, 30, tzinfo=UTC)
    edit = client.get(f"/campaigns/{created.id}/edit").get_data(as_text=True)
    assert 'value="2030-03-01T09:30"' in edit
    assert re.search(r'<input checked id="when-1" name="when" type="radio" value="schedule">', edit)


def test_editing_a_running_campaign_is_refused_with_the_reason(app, client, auth, sandbox, template):
    campaign_id, _openids = prepared_campaign(app, sandbox, template, 2, name="Running one")
    with app.app_context():
        services.launch(campaign_id)
    auth.login("marketer")
    page = client.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert "该活动不能编辑：活动已在发送中。只有草稿可以编辑。" in page
    assert '<fieldset class="plain" disabled>' in page

    posted = client.post(
        f"/campaigns/{campaign_id}/edit", data=form_for(template, 1, name="Renamed", rate_per_second="3")
    )
    assert posted.status_code == 409 and "只有草稿可以编辑" in posted.get_data(as_text=True)
    unchanged = campaign(app, campaign_id)
    assert (unchanged.name, unchanged.rate_per_second) == ("Running one", None)


def test_a_paused_campaign_changes_only_its_values_and_rate(app, client, auth, sandbox, template):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 3, name="Paused one")
    with app.app_context():
        services.launch(campaign_id)
        services.pause(campaign_id)
    key = a_thing_key(template)
    auth.login("marketer")
    page = client.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert "已暂停的活动只能修改关键词取值和发送速率" in page
    assert re.search(r'<input disabled id="name"', page)  # shown, not editable
    assert re.search(r'<input id="rate_per_second"', page)

    posted = client.post(
        f"/campaigns/{campaign_id}/edit",
        data=form_for(template, 1, name="Renamed", rate_per_second="4", **{f"value-{key}": "新品上市"}),
    )
    assert posted.status_code == 302
    saved = campaign(app, campaign_id)
    assert saved.name == "Paused one"  # not editable while paused: the posted name is ignored
    assert saved.rate_per_second == 4 and saved.data[key] == {"value": "新品上市"}
    with app.app_context():
        waiting = db.session.scalars(sa.select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
        assert {d.data[key] for d in waiting if d.state == DeliveryState.pending} == {"新品上市"}


def test_a_test_send_spends_a_credit_is_recorded_and_is_no_campaign_row(app, client, auth, sandbox, template):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 2)
    auth.login("marketer")
    form = client.get(f"/campaigns/{campaign_id}/test-send").get_data(as_text=True)
    assert openids[0] in form and openids[1] in form  # the segment's sample, to pick from

    sent = client.post(
        f"/campaigns/{campaign_id}/test-send", data={"pick": openids[0]}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "已发送" in sent
    assert balance(app, openids[0], template["priTmplId"])[0] == 0  # the credit is spent
    assert [(m["openid"], m["errcode"]) for m in sandbox.messages_all()] == [(openids[0], 0)]

    again = client.post(
        f"/campaigns/{campaign_id}/test-send", data={"openids": openids[0]}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "未发送" in again and "没有" in again  # skipped: no credit left, WeChat not called
    assert len(sandbox.messages_all()) == 1

    too_many = client.post(
        f"/campaigns/{campaign_id}/test-send", data={"openids": " ".join(f"o{i}" for i in range(6))}
    )
    assert too_many.status_code == 302
    with app.app_context():
        rows = db.session.scalars(sa.select(Delivery).order_by(Delivery.id)).all()
        assert [(d.source, d.campaign_id, d.state) for d in rows] == [
            (DeliverySource.test, None, DeliveryState.sent),
            (DeliverySource.test, None, DeliveryState.skipped),
        ]
        found = db.session.get(Campaign, campaign_id)
        assert services.counts(found)["recipients"] == 0 and services.counts(found)["sent"] == 0
        actions = db.session.scalars(sa.select(AuditEvent.action)).all()
        assert actions.count("campaign.test_sent") == 2
    assert campaign(app, campaign_id).state == CampaignState.draft


def test_duplicate_copies_everything_but_the_schedule(app, client, auth, sandbox, template):
    openids = sandbox.openids_all()[:1]
    granted_users(app, sandbox, template, openids)
    segment_id = segment_of_grantees(app, template)
    original_id = draft(
        app,
        template,
        segment_id,
        name="Spring sale",
        page="pages/a?id=1",
        miniprogram_state="trial",
        lang="en_US",
        rate_per_second=9,
        quiet_start=time(22),
        quiet_end=time(7),
        scheduled_at=datetime(2031, 1, 1, tzinfo=UTC),
    )
    auth.login("marketer")
    response = client.post(f"/campaigns/{original_id}/duplicate")
    original, copy = campaigns(app)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{copy.id}/edit")
    assert copy.name == "Spring sale（副本）" and copy.state == CampaignState.draft
    same = ("template_id", "segment_id", "data", "page", "miniprogram_state", "lang", "rate_per_second")
    assert {f: getattr(copy, f) for f in same} == {f: getattr(original, f) for f in same}
    assert (copy.quiet_start, copy.quiet_end) == (time(22), time(7))
    assert copy.scheduled_at is None and original.scheduled_at is not None


def test_a_viewer_sees_no_compose_buttons_and_cannot_post(app, client, auth, sandbox, template, personas):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 1)
    auth.login("viewer")
    assert 'id="new-campaign"' not in client.get("/campaigns/").get_data(as_text=True)
    for url in ("/campaigns/new", f"/campaigns/{campaign_id}/edit", f"/campaigns/{campaign_id}/test-send"):
        assert client.get(url).status_code == 403, url
    for url in (
        "/campaigns/new",
        f"/campaigns/{campaign_id}/edit",
        f"/campaigns/{campaign_id}/duplicate",
        f"/campaigns/{campaign_id}/test-send",
        f"/campaigns/{campaign_id}/dry-run",
    ):
        assert client.post(url, data={"openids": openids[0]}).status_code == 403, url
    assert len(campaigns(app)) == 1 and sandbox.messages_all() == []

    def actions_for(role: str) -> str:
        with app.test_request_context("/"):
            flask_login.login_user(db.session.get(Operator, personas[role].id))
            return render_template(
                "campaigns/_compose_actions.html", campaign=db.session.get(Campaign, campaign_id)
            )

    assert "action-" not in actions_for("viewer")
    marketer = actions_for("marketer")
    assert all(f'id="action-{name}"' in marketer for name in ("edit", "duplicate", "dry-run", "test-send"))
    auth.login("marketer")
    assert 'id="new-campaign"' in client.get("/campaigns/").get_data(as_text=True)
