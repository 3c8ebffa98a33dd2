"""A date reminder's page: its steps, its runs and the forecast of the next 14 days, in Chinese and English,
and the CSV of the users to prompt."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.campaigns.helpers import granted_users
from tests.campaigns.test_reminders import declare, launched_reminder, set_dates
from tests.dispatch.helpers import add_user


def test_the_reminder_page_shows_its_steps_and_forecast_and_exports_who_to_prompt(
    app, client, auth, sandbox, template
):
    from dashboard.extensions import db

    declare(app)
    zone = ZoneInfo(app.config["TIMEZONE"])
    today = datetime.now(zone).date()
    held, lacking = sandbox.openids_all()[:2]
    granted_users(app, sandbox, template, [held])
    with app.app_context():
        add_user(lacking)
        db.session.commit()
    in_three = (today + timedelta(days=3)).isoformat()
    set_dates(app, {held: in_three, lacking: in_three})
    parent_id = launched_reminder(app, template, now=datetime.now(zone))
    auth.login("viewer")
    page = client.get(f"/campaigns/{parent_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="reminder-steps"' in text and 'id="reminder-forecast"' in text and 'id="campaign-runs"' in text
    assert "7 天前" in text and "1 天前" in text and "当天" in text
    # Three days before the date the -7 step is past; the -1 step is due in 2 days and on-the-day in 3.
    assert f'data-day="{(today + timedelta(days=2)).isoformat()}" data-step="1"' in text
    assert f'data-day="{(today + timedelta(days=3)).isoformat()}" data-step="2"' in text
    # held's one credit goes on the step the day before: on the day it must grant again.
    assert "到期：4 · 当前有订阅次数：1 · 需重新授权：3" in text
    client.post("/language/en", data={"next": "/"})
    english = client.get(f"/campaigns/{parent_id}").get_data(as_text=True)
    assert "7 days before" in english and "On the day" in english and "Must grant again" in english
    exported = client.get(f"/campaigns/{parent_id}/reminder-forecast.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = exported.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "openid,unionid,nickname,date,reason"
    assert lines[1:] == [f"{held},,,{in_three},too_few_credits", f"{lacking},,,{in_three},no_credit"]
    assert client.get("/campaigns/999/reminder-forecast.csv").status_code == 404


def test_the_one_off_compose_pages_refuse_a_reminder_and_change_nothing(app, client, auth, sandbox, template):
    from dashboard.extensions import db
    from dashboard.models.campaign import Campaign

    declare(app)
    zone = ZoneInfo(app.config["TIMEZONE"])
    parent_id = launched_reminder(app, template, now=datetime.now(zone))
    with app.app_context():
        before = db.session.get(Campaign, parent_id)
        schedule, reminder, count = before.schedule, before.reminder, db.session.query(Campaign).count()
    auth.login("marketer")
    for method, path, to in (
        ("get", "edit", f"/campaigns/reminders/{parent_id}/edit"),  # its own form, which says why not
        ("post", "edit", f"/campaigns/reminders/{parent_id}/edit"),
        ("post", "duplicate", f"/campaigns/{parent_id}"),
        ("post", "dry-run", f"/campaigns/{parent_id}"),
        ("post", "test-send", f"/campaigns/{parent_id}"),
    ):
        answer = getattr(client, method)(f"/campaigns/{parent_id}/{path}", data={"name": "x", "openids": "o"})
        assert answer.status_code == 303, (method, path)
        assert answer.headers["Location"].endswith(to)
    fragment = client.post(f"/campaigns/{parent_id}/dry-run", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "日期提醒不在这里复制" in fragment.get_data(as_text=True)
    with app.app_context():
        after = db.session.get(Campaign, parent_id)
        assert (after.schedule, after.reminder) == (schedule, reminder)
        assert db.session.query(Campaign).count() == count
