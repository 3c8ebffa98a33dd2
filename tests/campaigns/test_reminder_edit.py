"""Editing a draft date reminder in the browser's form (``/campaigns/reminders/<id>/edit``): prefilled from
the campaign, saved through ``services.update_campaign`` (its refusals next to their fields, nothing
changed), refused for a launched reminder and for a viewer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models import utcnow
from dashboard.models.audit import AuditEvent
from dashboard.models.campaign import Campaign, CampaignState
from tests.api.live import mp_overrides
from tests.campaigns.helpers import draft, fixed_data, granted_users, segment_of_grantees
from tests.campaigns.test_channels import OA_SECRET, _oa_template_id, _setup, oa_values
from tests.campaigns.test_reminder_form import form_for
from tests.campaigns.test_reminders import KEY, declare
from tests.oa.helpers import oa_overrides, oa_sandbox_config
from tests.sandbox_api import example_data

S = CampaignState


def saved_reminder(app, template: dict) -> int:
    """A draft reminder of two steps (-7 and -1 days, at 09:30) with the sandbox's example values."""
    data = {key: {"value": value} for key, value in example_data(template).items()}
    with app.app_context():
        campaign = services.create_campaign(
            {
                "name": "Membership expiry",
                "template_id": template["priTmplId"],
                "segment_id": None,
                "reminder": {
                    "attribute": KEY,
                    "time": "09:30",
                    "steps": [{"offset_days": -7, "data": data}, {"offset_days": -1, "data": data}],
                },
            }
        )
        return campaign.id


def stored(app, campaign_id: int) -> Campaign:
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        db.session.expunge(campaign)
        return campaign


def ready(app, sandbox, template) -> tuple[int, str]:
    granted_users(app, sandbox, template, [])
    declare(app)
    return saved_reminder(app, template), next(iter(example_data(template)))


def edit_form(campaign: Campaign, template: dict, **change) -> dict:
    """The form as the edit page posts it, unchanged but for ``change``."""
    steps = campaign.reminder["steps"]
    data = form_for(
        template, name=campaign.name, send_time=campaign.reminder["time"], offset_2="", offset_3=""
    )
    for number, step in enumerate(steps, start=1):
        data[f"offset_{number}"] = str(step["offset_days"])
        for key, entry in step["data"].items():
            data[f"s{number}-{key}"] = entry["value"]
    return {**data, **change}


def unchanged(app, before: Campaign) -> bool:
    after = stored(app, before.id)
    saved = ("name", "reminder", "schedule", "segment_id", "state", "updated_at")
    return all(getattr(after, name) == getattr(before, name) for name in saved)


def post_edit(client, campaign: Campaign, template: dict, **change):
    return client.post(
        f"/campaigns/reminders/{campaign.id}/edit", data=edit_form(campaign, template, **change)
    )


def test_the_edit_page_is_prefilled_from_the_draft(app, client, auth, sandbox, template):
    campaign_id, first_key = ready(app, sandbox, template)
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        steps = campaign.reminder["steps"]
        steps = [{**steps[0], "data": {**steps[0]["data"], first_key: {"value": "first step"}}}, steps[1]]
        campaign.reminder = {**campaign.reminder, "steps": steps}
        db.session.commit()
    auth.login("marketer")
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'href="/campaigns/reminders/{campaign_id}/edit"' in detail and 'id="action-edit"' in detail
    page = client.get(f"/campaigns/reminders/{campaign_id}/edit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "编辑日期提醒" in text
    assert 'value="Membership expiry"' in text and 'value="09:30"' in text
    assert 'id="offset_1"' in text and 'value="-7"' in text and 'value="-1"' in text
    assert f'<option selected value="{KEY}">' in text
    assert f'id="s1-{first_key}" name="s1-{first_key}" maxlength="512" value="first step"' in text
    assert f'action="/campaigns/reminders/{campaign_id}/edit?template_id={template["priTmplId"]}"' in text


def test_changes_are_saved_and_shown_on_the_detail_page(app, client, auth, sandbox, template):
    campaign_id, first_key = ready(app, sandbox, template)
    before = stored(app, campaign_id)
    auth.login("marketer")
    change = {
        "name": "Membership renewal",
        "send_time": "18:15",
        "offset_2": "-3",
        f"s2-{first_key}": "renew soon",
    }
    saved = client.post(
        f"/campaigns/reminders/{campaign_id}/edit", data=edit_form(before, template, **change)
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    assert saved.headers["Location"].endswith(f"/campaigns/{campaign_id}")
    after = stored(app, campaign_id)
    assert after.name == "Membership renewal" and after.state == S.draft
    assert after.reminder["time"] == "18:15" and after.schedule == {"repeat": "daily", "time": "18:15"}
    assert [step["offset_days"] for step in after.reminder["steps"]] == [-7, -3]
    assert after.reminder["steps"][1]["data"][first_key]["value"] == "renew soon"
    assert after.reminder["steps"][0]["data"] == before.reminder["steps"][0]["data"]
    assert after.reminder["in_segment"] is False
    detail = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "提醒的修改已保存。" in detail and "Membership renewal" in detail
    assert "18:15" in detail and "3 天前" in detail and "renew soon" in detail
    with app.app_context():
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "campaign.edited").order_by(AuditEvent.id.desc())
        )
        assert event is not None and event.target_id == str(campaign_id)
        assert {"name", "reminder"} <= set(event.detail["fields"])


def test_a_bad_value_is_refused_beside_its_field_and_nothing_changes(app, client, auth, sandbox, template):
    campaign_id, first_key = ready(app, sandbox, template)
    before = stored(app, campaign_id)
    auth.login("marketer")
    refused = post_edit(client, before, template, name="Changed", **{f"s2-{first_key}": "{{user.nope}}"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "{{user.nope}}" in text
    assert text.index("没有用户变量") > text.index(f'name="s2-{first_key}"')  # shown under its field
    assert text.index("没有用户变量") < text.index('name="offset_3"')
    same_day = post_edit(client, before, template, offset_2="-7")
    assert same_day.status_code == 422 and "每个步骤请填写不同的天数" in same_day.get_data(as_text=True)
    assert unchanged(app, before)


@pytest.mark.parametrize("paused", [False, True], ids=["scheduled", "paused"])
def test_a_launched_reminder_cannot_be_edited(app, client, auth, sandbox, template, paused):
    campaign_id, _first_key = ready(app, sandbox, template)
    with app.app_context():
        assert services.launch(campaign_id, now=utcnow()).state == S.scheduled
        if paused:
            assert services.pause(campaign_id).state == S.paused
    before = stored(app, campaign_id)
    auth.login("marketer")
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f"/campaigns/reminders/{campaign_id}/edit" not in detail
    page = client.get(f"/campaigns/reminders/{campaign_id}/edit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="edit-refused"' in text
    assert "该活动不能编辑" in text and 'id="reminder-form"' not in text
    assert ("活动已暂停。" if paused else "活动已排期。") in text and "只有草稿可以编辑" in text
    posted = post_edit(client, before, template, name="Changed")
    assert posted.status_code == 409 and 'id="edit-refused"' in posted.get_data(as_text=True)
    assert unchanged(app, before) and before.state == (S.paused if paused else S.scheduled)


def test_a_viewer_cannot_open_the_edit_page(app, client, auth, sandbox, template):
    campaign_id, _first_key = ready(app, sandbox, template)
    before = stored(app, campaign_id)
    auth.login("viewer")
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f"/campaigns/reminders/{campaign_id}/edit" not in detail
    assert client.get(f"/campaigns/reminders/{campaign_id}/edit").status_code == 403
    posted = post_edit(client, before, template, name="Changed")
    assert posted.status_code == 403 and unchanged(app, before)


def test_a_campaign_of_one_send_is_edited_on_its_own_page(app, client, auth, sandbox, template):
    granted_users(app, sandbox, template, [])
    campaign_id = draft(app, template, segment_of_grantees(app, template))
    auth.login("marketer")
    response = client.get(f"/campaigns/reminders/{campaign_id}/edit")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/campaigns/{campaign_id}/edit"
    )
    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'href="/campaigns/{campaign_id}/edit"' in detail


def test_the_campaign_edit_address_of_a_reminder_leads_to_its_own_form(app, client, auth, sandbox, template):
    campaign_id, _ = ready(app, sandbox, template)
    auth.login("marketer")
    response = client.get(f"/campaigns/{campaign_id}/edit")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/campaigns/reminders/{campaign_id}/edit"
    )


class TestOnTheOfficialAccount:
    """A reminder sent by credit, else through the Official Account: each step's OA values too."""

    @pytest.fixture
    def sandbox_config(self):
        return oa_sandbox_config(OA_APPID="wxo0reminderedit", OA_SECRET=OA_SECRET, OA_NOT_FOLLOWING_EVERY=0)

    @pytest.fixture
    def config_overrides(self, sandbox):
        return {**mp_overrides(sandbox), **oa_overrides(sandbox)}

    def test_the_oa_values_are_prefilled_saved_and_judged(self, app, client, auth, sandbox, template):
        _setup(app, sandbox, template, 1)
        declare(app)
        oa_template_id = _oa_template_id(app)
        with app.app_context():
            campaign_id = services.create_campaign(
                {
                    "name": "Membership expiry",
                    "template_id": template["priTmplId"],
                    "segment_id": None,
                    "channel": "mp_subscribe_or_oa",
                    "oa_template_id": oa_template_id,
                    "reminder": {
                        "attribute": KEY,
                        "time": "09:30",
                        "steps": [{"offset_days": -7, "data": fixed_data(template), "oa_data": oa_values()}],
                    },
                }
            ).id
        before = stored(app, campaign_id)
        auth.login("marketer")
        text = client.get(f"/campaigns/reminders/{before.id}/edit").get_data(as_text=True)
        assert 'checked id="channel-2" name="channel" type="radio" value="mp_subscribe_or_oa"' in text
        assert f'name="oa_template_id" value="{oa_template_id}"' in text
        assert 'name="s1-oa-character_string3" maxlength="512" value="BK20260105"' in text
        assert 'name="s1-oa-thing1-fallback" maxlength="512" value="您的预约"' in text
        oa_form = {
            "channel": "mp_subscribe_or_oa",
            "oa_template_id": oa_template_id,
            **{f"s1-oa-{key}": entry["value"] for key, entry in oa_values().items()},
            "s1-oa-thing1-fallback": "您的预约",
        }
        refused = post_edit(client, before, template, **{**oa_form, "s1-oa-amount4": "1234567890123"})
        text = refused.get_data(as_text=True)
        assert refused.status_code == 422 and 'class="field has-error"' in text
        assert text.index('class="error"', text.index('name="s1-oa-amount4"')) < text.index('name="offset_2"')
        assert unchanged(app, before)
        saved = post_edit(client, before, template, **{**oa_form, "s1-oa-character_string3": "BK20261231"})
        assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
        (step,) = stored(app, before.id).reminder["steps"]
        assert step["oa_data"] == oa_values(character_string3={"value": "BK20261231"})
        assert step["data"] == before.reminder["steps"][0]["data"]
