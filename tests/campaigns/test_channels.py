"""Campaigns and date reminders on a channel (issue 15 point 4): the Official Account's template and values
judged by its rules at compose, the snapshot's rows carrying the channel and ``oa_data`` filled per user,
the launch refusing an OA campaign the OA cannot send, the API's fields, and a campaign on
``mp_subscribe_or_oa`` sent by the engine whose report splits the sends by channel as the sandbox counted.

The sandbox's linked Official Account is on (its AppID in the app's settings); its users are joined to ours
by their unionid, as the follower sync does it."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import sqlalchemy as sa

from dashboard.campaigns import compose, report, services
from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.campaign import Campaign
from dashboard.models.catalog import Drift, MessageTemplate
from dashboard.models.oa_template import OaTemplate
from dashboard.models.segment import Segment
from dashboard.oa.followers import sync_followers
from dashboard.oa.templates import sync_oa_templates
from dashboard.wechat.oa import get_oa_client
from tests.api.live import mp_overrides
from tests.campaigns.helpers import fixed_data
from tests.dispatch.helpers import grant, register
from tests.oa.helpers import oa_overrides, oa_sandbox_config

OA_SECRET = "sandbox-oa-secret-for-campaigns"
TITLE = "预约成功通知"  # thing1, time2, character_string3, amount4
TOO_LONG = "长" * 30  # a thing value takes at most 20 characters


@pytest.fixture
def sandbox_config():
    return oa_sandbox_config(OA_APPID="wxo0campaignchannel", OA_SECRET=OA_SECRET, OA_NOT_FOLLOWING_EVERY=0)


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), **oa_overrides(sandbox)}


def _oa(sandbox, path: str, method: str = "get") -> Any:
    response = getattr(requests, method)(f"{sandbox.url}/sandbox/api/oa{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def _mp_state(sandbox) -> dict[str, Any]:
    response = requests.get(f"{sandbox.url}/sandbox/api/state", timeout=10)
    response.raise_for_status()
    return response.json()


def _mp_users(sandbox) -> list[dict[str, Any]]:
    """The sandbox's mini-program users as its OA knows them: mp openid, unionid, following."""
    # Only users with a unionid can be joined to their follower (the sandbox gives some none).
    rows = [f for f in _oa(sandbox, "/followers")["followers"] if f["mp_openid"] and f["unionid"]]
    return sorted(rows, key=lambda f: f["order"])


def _setup(app, sandbox, template, count: int, nicknames: dict[int, str] | None = None) -> list[str]:
    """``count`` of the sandbox's users in our books with their unionid, the OA's templates and followers
    synced, the mini-program template registered, and a segment of everyone. Returns their openids."""
    people = _mp_users(sandbox)[:count]
    with app.app_context():
        register(template)
        for index, person in enumerate(people):
            db.session.add(
                WechatUser(
                    openid=person["mp_openid"],
                    unionid=person["unionid"],
                    nickname=(nicknames or {}).get(index, f"用户{index}"),
                )
            )
        db.session.add(Segment(name="everyone", filter={"all": []}))
        db.session.commit()
        sync_oa_templates(get_oa_client())
        sync_followers(get_oa_client())
        db.session.commit()
    return [p["mp_openid"] for p in people]


def _oa_template_id(app) -> str:
    with app.app_context():
        return db.session.scalar(sa.select(OaTemplate.template_id).where(OaTemplate.title == TITLE))


def _segment_id(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Segment.id).where(Segment.name == "everyone"))


def oa_values(**changes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "thing1": {"value": "{{user.nickname}}的预约", "fallback": "您的预约"},
        "time2": {"value": "2026-01-05 14:00"},
        "character_string3": {"value": "BK20260105"},
        "amount4": {"value": "120.00"},
        **changes,
    }


def _fields(app, template, channel: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "name": "Two channels",
        "template_id": template["priTmplId"] if channel != "oa_template" else None,
        "segment_id": _segment_id(app),
        "data": fixed_data(template) if channel != "oa_template" else {},
        "channel": channel,
        "oa_template_id": _oa_template_id(app),
        "oa_data": oa_values(),
    }
    return {**fields, **extra}


# -- composing --------------------------------------------------------------------------------------------


def test_oa_values_are_judged_by_the_oa_rules_and_the_channel_needs_the_oa(app, sandbox, template):
    _setup(app, sandbox, template, 2)
    with app.app_context():
        # 13 digits: the Official Account's amount takes at most 12 (the mini-program's rule differs).
        bad = oa_values(amount4={"value": "1234567890123"})
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign(_fields(app, template, "mp_subscribe_or_oa", oa_data=bad))
        assert (refused.value.code, refused.value.field) == ("invalid_value", "oa_data.amount4")
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign(_fields(app, template, "oa_template", oa_template_id="nope"))
        assert refused.value.code == "unknown_oa_template"
        # On the OA alone, no mini-program template is asked for or kept.
        campaign = services.create_campaign(_fields(app, template, "oa_template"))
        assert (campaign.channel, campaign.template_id, campaign.data) == ("oa_template", "", {})
        assert campaign.oa_data == oa_values()
        plain = services.create_campaign(_fields(app, template, "mp_subscribe"))
        assert (plain.oa_template_id, plain.oa_data) == (None, None)
        app.config["WECHAT_OA_APPID"] = ""
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign(_fields(app, template, "mp_subscribe_or_oa"))
        assert (refused.value.status, refused.value.code) == (409, "oa_off")
        # A draft made while it was on cannot launch once the channel is off.
        with pytest.raises(services.CampaignError) as refused:
            services.launch(campaign.id)
        assert refused.value.code == "oa_off"


def test_the_compose_form_marks_each_oa_value_that_breaks_a_rule(app, sandbox, template, auth, client):
    _setup(app, sandbox, template, 2)
    auth.login("marketer")
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert (
        'name="channel"' in page and 'value="mp_subscribe_or_oa"' in page and 'id="channel-off"' not in page
    )
    assert 'name="oa-source-' in page
    card = client.get(
        "/campaigns/preview",
        query_string={
            "channel": "mp_subscribe_or_oa",
            "template_id": template["priTmplId"],
            "oa_template_id": _oa_template_id(app),
            "segment_id": _segment_id(app),
            "oa-source-amount4": "text",
            "oa-value-amount4": "1234567890123",
        },
    ).get_data(as_text=True)
    assert 'id="oa-preview-card"' in card and card.count('id="preview-card"') <= 1  # the OA card's renamed
    assert 'id="reach-by-channel"' in card and "47003" in card  # amount4 broke the OA's rule: marked
    assert 'data-count="reach-oa_template">2<' in card
    fields = client.get(f"/campaigns/compose/oa-keywords?oa_template_id={_oa_template_id(app)}")
    assert 'name="oa-source-thing1"' in fields.get_data(as_text=True)
    form = {
        "name": "Form",
        "channel": "mp_subscribe_or_oa",
        "template_id": template["priTmplId"],
        "oa_template_id": _oa_template_id(app),
        "segment_id": str(_segment_id(app)),
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "when": "now",
        "oa-source-thing1": "text",
        "oa-value-thing1": TOO_LONG,
        "oa-source-time2": "text",
        "oa-value-time2": "2026-01-05 14:00",
        "oa-source-character_string3": "text",
        "oa-value-character_string3": "BK1",
        "oa-source-amount4": "text",
        "oa-value-amount4": "1234567890123",
    }
    for name, entry in fixed_data(template).items():
        form |= {f"source-{name}": "text", f"value-{name}": entry["value"]}
    answer = client.post("/campaigns/new", data=form)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert text.count('class="error kw-error"') == 2  # thing1 too long, amount4 too many digits
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
    form |= {"oa-value-thing1": "口腔检查", "oa-value-amount4": "120.00"}
    assert client.post("/campaigns/new", data=form).status_code == 302
    with app.app_context():
        campaign = db.session.scalar(sa.select(Campaign))
        assert campaign.channel == "mp_subscribe_or_oa" and campaign.oa_data["thing1"] == {
            "value": "口腔检查"
        }
    # The OA channel off: the subscribe message only, said in a sentence.
    app.config["WECHAT_OA_APPID"] = ""
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert 'id="channel-off"' in page and 'value="mp_subscribe_or_oa"' not in page


# -- the snapshot -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1000, 2], ids=["one-window", "windows-of-2"])
def test_snapshot_rows_carry_the_channel_and_oa_values_filled_per_user(
    app, sandbox, template, monkeypatch, batch
):
    monkeypatch.setattr(services, "SNAPSHOT_BATCH", batch)
    openids = _setup(app, sandbox, template, 3, nicknames={0: "小明", 1: "", 2: TOO_LONG})
    with app.app_context():
        campaign = services.create_campaign(_fields(app, template, "mp_subscribe_or_oa", page="pages/a?b=1"))
        assert services.start(campaign.id) == 3
        rows = {r.openid: r for r in db.session.scalars(sa.select(Delivery))}
        fixed = {"time2": "2026-01-05 14:00", "character_string3": "BK20260105", "amount4": "120.00"}
        assert rows[openids[0]].oa_data == {"thing1": "小明的预约", **fixed}
        assert rows[openids[1]].oa_data == {"thing1": "您的预约", **fixed}  # no nickname: the fallback
        assert (rows[openids[2]].state.value, rows[openids[2]].reason) == ("skipped", "invalid_value")
        oa_template_id = _oa_template_id(app)
        for row in rows.values():
            assert (row.channel, row.oa_template_id, row.channel_used) == (
                "mp_subscribe_or_oa",
                oa_template_id,
                None,
            )
            assert row.template_id == template["priTmplId"]
            assert row.oa_pagepath is None and row.page.startswith("pages/a?b=1&tz=")


def test_an_oa_only_campaign_with_fixed_values_is_one_insert(app, sandbox, template):
    openids = _setup(app, sandbox, template, 2)
    with app.app_context():
        values = oa_values(thing1={"value": "口腔检查"})
        campaign = services.create_campaign(_fields(app, template, "oa_template", oa_data=values))
        assert services.start(campaign.id) == 2
        rows = list(db.session.scalars(sa.select(Delivery)))
        assert {r.openid for r in rows} == set(openids)
        expected = {key: entry["value"] for key, entry in values.items()}
        assert all(
            (r.channel, r.template_id, r.data, r.oa_data) == ("oa_template", "", {}, expected) for r in rows
        )


def test_a_removed_oa_template_refuses_the_launch_and_holds_a_scheduled_one(app, sandbox, template):
    _setup(app, sandbox, template, 2)
    with app.app_context():
        campaign = services.create_campaign(_fields(app, template, "oa_template"))
        oa_template = db.session.scalar(sa.select(OaTemplate).where(OaTemplate.title == TITLE))
        oa_template.drift = Drift.removed
        db.session.commit()
        with pytest.raises(services.CampaignError) as refused:
            services.launch(campaign.id)
        assert (refused.value.code, refused.value.field) == ("oa_template_removed", "oa_template_id")
        services._hold_scheduled(campaign.id, refused.value)  # a draft is not held: only scheduled rows
        campaign.state = "scheduled"
        db.session.commit()
        services._hold_scheduled(campaign.id, refused.value)
        held = db.session.get(Campaign, campaign.id, populate_existing=True)
        assert (held.hold_code, held.hold_args) == ("oa_template", {"why": "removed"})
        assert (
            held.pause_reason
            == "Waiting: the Official Account template cannot be used now (removed at WeChat)."
        )


# -- the API ----------------------------------------------------------------------------------------------


def test_the_api_takes_and_shows_the_channel_fields(app, sandbox, template, client, key):  # noqa: F811
    _setup(app, sandbox, template, 2)
    headers = key
    body = _fields(app, template, "oa_template")
    del body["template_id"]
    answer = client.post("/api/v1/campaigns", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    made = answer.get_json()
    assert (made["channel"], made["template_id"], made["oa_template_id"]) == (
        "oa_template",
        None,
        body["oa_template_id"],
    )
    assert made["oa_data"] == oa_values() and made["counts"]["sent_by_channel"] == {
        "mp_subscribe": 0,
        "oa_template": 0,
    }
    bad = {**body, "oa_data": oa_values(amount4={"value": "1234567890123"})}
    refused = client.post("/api/v1/campaigns", json=bad, headers=headers)
    assert (refused.status_code, refused.get_json()["error"]["field"]) == (422, "oa_data.amount4")
    missing = {k: v for k, v in body.items() if k != "oa_template_id"}
    assert client.post("/api/v1/campaigns", json=missing, headers=headers).status_code == 422
    wrong = {**body, "channel": "fax"}
    assert (
        client.post("/api/v1/campaigns", json=wrong, headers=headers).get_json()["error"]["field"]
        == "channel"
    )


# -- sending, with the engine --------------------------------------------------------------------------


def test_a_fallback_campaign_sends_by_credit_or_follow_and_its_report_equals_the_sandbox(
    app, sandbox, template, dispatcher
):
    """Depends on the engine's OA sending (helper "engine", dashboard/dispatch/*)."""
    openids = _setup(app, sandbox, template, 6)
    credit, follow_only, neither = openids[:2], openids[2:5], openids[5:]
    requests.post(f"{sandbox.url}/sandbox/api/oa/users/{neither[0]}/unfollow", timeout=10).raise_for_status()
    with app.app_context():
        for openid in credit:
            sandbox.grant(openid, template["priTmplId"])
            user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
            grant(user_id, template["priTmplId"])
        sync_followers(get_oa_client())
        db.session.commit()
        campaign = services.create_campaign(_fields(app, template, "mp_subscribe_or_oa"))
        services.launch(campaign.id)
        campaign_id = campaign.id
    before = _oa(sandbox, "/state")["sends"]["delivered"]
    mp_before = _mp_state(sandbox)["sends"]["ok"]
    dispatcher.drain()
    with app.app_context():
        services.supervise()
        campaign = db.session.get(Campaign, campaign_id)
        assert campaign.state.value == "completed"
        rows = {r.openid: r for r in db.session.scalars(sa.select(Delivery))}
        assert {o: rows[o].channel_used for o in credit} == dict.fromkeys(credit, "mp_subscribe")
        assert {o: rows[o].channel_used for o in follow_only} == dict.fromkeys(follow_only, "oa_template")
        assert (rows[neither[0]].state.value, rows[neither[0]].reason) == ("skipped", "no_channel")
        figures = report.figures(campaign)
        oa_sent = _oa(sandbox, "/state")["sends"]["delivered"] - before
        mp_sent = _mp_state(sandbox)["sends"]["ok"] - mp_before
        assert (
            figures.sent_by_channel
            == {"mp_subscribe": mp_sent, "oa_template": oa_sent}
            == {
                "mp_subscribe": 2,
                "oa_template": 3,
            }
        )
        assert services.counts(campaign)["sent_by_channel"] == figures.sent_by_channel
        assert {o.key: o.count for o in figures.skipped_by} == {"no_channel": 1}
        csv = "".join(report.csv_rows(campaign_id, report.LogFilter()))
        assert csv.count(",oa_template") == 3 and csv.count(",mp_subscribe\r\n") == 2


# -- a date reminder on a channel --------------------------------------------------------------------------


def test_a_reminder_on_the_oa_fills_each_steps_oa_values(app, sandbox, template):
    from datetime import UTC, datetime

    from dashboard.models.user_attribute import UserAttribute

    openids = _setup(app, sandbox, template, 2)
    with app.app_context():
        db.session.add(UserAttribute(key="expires", label="Expires", type="date"))
        for user in db.session.scalars(sa.select(WechatUser)):
            user.attributes = {"expires": "2026-03-10"}
        db.session.commit()
        step = {"offset_days": 0, "data": {}, "oa_data": oa_values()}
        campaign = services.create_campaign(
            {
                **_fields(app, template, "oa_template"),
                "segment_id": None,
                "reminder": {"attribute": "expires", "time": "09:00", "steps": [step]},
            }
        )
        assert campaign.reminder["steps"][0]["oa_data"] == oa_values()
        bad = {**step, "oa_data": oa_values(amount4={"value": "1234567890123"})}
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign(
                {
                    **_fields(app, template, "oa_template"),
                    "segment_id": None,
                    "reminder": {"attribute": "expires", "time": "09:00", "steps": [bad]},
                }
            )
        assert refused.value.field == "reminder.steps[0].oa_data.amount4"
        run = Campaign(
            name="run",
            template_id="",
            segment_id=None,
            data={},
            channel=campaign.channel,
            oa_template_id=campaign.oa_template_id,
            parent_id=campaign.id,
            reminder=campaign.reminder,
            timezone="UTC",
            occurrence_at=datetime(2026, 3, 10, 9, tzinfo=UTC),
            schedule=None,
        )
        db.session.add(run)
        db.session.commit()
        assert services.start(run.id) == 2
        rows = list(db.session.scalars(sa.select(Delivery).where(Delivery.campaign_id == run.id)))
        assert {r.openid for r in rows} == set(openids)
        assert all(
            r.channel == "oa_template" and r.oa_data["thing1"] == f"用户{openids.index(r.openid)}的预约"
            for r in rows
        )


def test_a_test_send_of_an_oa_only_campaign_goes_through_the_official_account(app, sandbox, template):
    """Before, the test send looked for the subscribe template an OA-only campaign does not have and
    refused with "template removed"; it now sends on the campaign's channel, filled for the user."""
    openids = _setup(app, sandbox, template, 2, nicknames={0: "王伟"})
    before = _oa(sandbox, "/state")
    with app.app_context():
        campaign = services.create_campaign(_fields(app, template, "oa_template"))
        [result] = compose.test_send(campaign, openids[:1], None)
        delivery = result.delivery
        assert delivery is not None, result
        assert (delivery.source.value, delivery.state.value, delivery.channel_used) == (
            "test",
            "sent",
            "oa_template",
        )
        assert delivery.oa_data["thing1"] == "王伟的预约"
        assert delivery.oa_openid and delivery.oa_openid != openids[0]
        oa_openid, client_msg_id = delivery.oa_openid, f"tongzhi-{delivery.id}"
    assert _oa(sandbox, "/state") != before
    [message] = _oa(sandbox, "/messages")["messages"][-1:]
    assert (message["openid"], message["client_msg_id"], message["errcode"]) == (oa_openid, client_msg_id, 0)
    assert message["data"]["thing1"]["value"] == "王伟的预约"


@pytest.mark.parametrize("channel", ["oa_template", "mp_subscribe_or_oa"])
def test_a_reminders_forecast_counts_followers_on_a_channel_that_uses_the_official_account(
    app, sandbox, template, channel
):
    """Before, the forecast counted only subscribe credits, so every user of an OA reminder showed as
    "must grant again". Three users due today: none holds a credit, two follow, one stopped following."""
    from datetime import UTC, datetime

    from dashboard.campaigns import reminders
    from dashboard.models.oa import OaFollower
    from dashboard.models.user_attribute import UserAttribute

    openids = _setup(app, sandbox, template, 3)
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add(UserAttribute(key="expires", label="Expires", type="date"))
        for user in db.session.scalars(sa.select(WechatUser)):
            user.attributes = {"expires": now.date().isoformat()}
        gone = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == openids[2]))
        for follower in db.session.scalars(sa.select(OaFollower).where(OaFollower.unionid == gone.unionid)):
            follower.following = False
        db.session.commit()
        campaign = services.create_campaign(
            {
                **_fields(app, template, channel),
                "segment_id": None,
                "reminder": {
                    "attribute": "expires",
                    "time": "09:00",
                    "steps": [
                        {
                            "offset_days": 0,
                            "data": {} if channel == "oa_template" else fixed_data(template),
                            "oa_data": oa_values(),
                        }
                    ],
                },
            }
        )
        campaign.timezone = "UTC"
        [today] = [row for row in reminders.forecast(campaign, now) if row.due]
        assert (today.due, today.live, today.grant_again) == (3, 2, 1)
        statement, _key = reminders.export_statement(campaign, now)
        exported = {row.openid: row.reason for row in db.session.execute(statement)}
        assert exported == {openids[2]: "not_following" if channel == "oa_template" else "no_channel"}


def test_the_dry_run_judges_the_official_accounts_values_too(app, sandbox, template):
    """Before, the dry run judged only the subscribe message's values (and an OA-only campaign, which has
    none, said its template no longer existed). A user whose OA value breaks its rule is counted skipped."""
    from dashboard.campaigns import dry_run

    _setup(app, sandbox, template, 3, nicknames={1: "一个非常非常长的用户昵称超过二十个字"})
    with app.app_context():
        for channel in ("oa_template", "mp_subscribe_or_oa"):
            campaign = services.create_campaign(_fields(app, template, channel, name=f"dry {channel}"))
            mp_template = None
            if channel != "oa_template":
                mp_template = db.session.scalar(
                    sa.select(MessageTemplate).where(MessageTemplate.template_id == campaign.template_id)
                )
            oa_template = db.session.scalar(
                sa.select(OaTemplate).where(OaTemplate.template_id == campaign.oa_template_id)
            )
            segment = db.session.get(Segment, campaign.segment_id)
            result = dry_run.dry_run(
                mp_template, segment.filter, campaign.data, oa_template=oa_template, oa_data=campaign.oa_data
            )
            assert result.problem is None
            assert (result.total, result.skipped) == (3, 1), channel
            by_key = {k.key: k for k in result.keywords}
            assert (by_key["oa.thing1"].passed, by_key["oa.thing1"].refused) == (2, 1)
            assert any(not key.startswith("oa.") for key in by_key) == (channel != "oa_template")
