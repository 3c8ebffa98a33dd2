"""The date reminder's form: from the compose page to a saved reminder, and its refusals next to their
fields (nothing saved)."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models.campaign import Campaign
from tests.campaigns.helpers import granted_users
from tests.campaigns.test_reminders import KEY, declare
from tests.sandbox_api import example_data


def reminders_saved(app) -> list[Campaign]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Campaign).where(Campaign.reminder.is_not(None))).all()
        for row in rows:
            db.session.expunge(row)
        return list(rows)


def form_for(template: dict, **change) -> dict:
    data = {
        "name": "Membership expiry",
        "template_id": template["priTmplId"],
        "attribute": KEY,
        "send_time": "09:30",
        "segment_id": "0",
        "offset_1": "-7",
        "offset_2": "-1",
        "offset_3": "",
    }
    for number in (1, 2, 3):
        for key, value in example_data(template).items():
            data[f"s{number}-{key}"] = value
    return {**data, **change}


def test_a_reminder_from_the_form(app, client, auth, sandbox, template):
    granted_users(app, sandbox, template, [])
    declare(app)
    auth.login("marketer")
    compose = client.get("/campaigns/new").get_data(as_text=True)
    assert "/campaigns/reminders/new" in compose
    page = client.get(f"/campaigns/reminders/new?template_id={template['priTmplId']}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="offset_3"' in text and f'value="{KEY}"' in text
    saved = client.post("/campaigns/reminders/new", data=form_for(template))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    (reminder,) = reminders_saved(app)
    assert reminder.schedule == {"repeat": "daily", "time": "09:30"} and reminder.segment_id is None
    assert [s["offset_days"] for s in reminder.reminder["steps"]] == [-7, -1]
    detail = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'id="reminder-forecast"' in detail and "7 天前" in detail


def test_bad_reminders_are_form_errors_and_save_nothing(app, client, auth, sandbox, template):
    granted_users(app, sandbox, template, [])
    declare(app)
    auth.login("marketer")
    same_day = client.post("/campaigns/reminders/new", data=form_for(template, offset_2="-7"))
    assert same_day.status_code == 422 and "每个步骤请填写不同的天数" in same_day.get_data(as_text=True)
    none = client.post("/campaigns/reminders/new", data=form_for(template, offset_1="", offset_2=""))
    assert none.status_code == 422 and "请填写一到三个步骤" in none.get_data(as_text=True)
    first_key = next(iter(example_data(template)))
    bad_value = client.post(
        "/campaigns/reminders/new", data=form_for(template, **{f"s2-{first_key}": "{{user.nope}}"})
    )
    text = bad_value.get_data(as_text=True)
    assert bad_value.status_code == 422 and "{{user.nope}}" in text
    assert text.index("没有用户变量") > text.index(f'name="s2-{first_key}"')  # shown under its field
    assert reminders_saved(app) == []
