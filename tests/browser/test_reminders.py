"""A date reminder in Chromium, as a team would set one up: the back end declares `membership_expires_at`
and uploads users with their dates through the batch API, a marketer composes a 3-step reminder on the
form, launches it, and reads its steps and 14-day forecast at 390 px, in Chinese and English."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models import Operator
from dashboard.models.campaign import Campaign, CampaignState
from tests.browser.test_home import DESKTOP, MAIN_SPILL, PHONE
from tests.browser.test_pages import log_in
from tests.campaigns.helpers import granted_users
from tests.sandbox_api import example_data

KEY = "membership_expires_at"


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


def api_key(app, *scopes: str) -> dict[str, str]:
    args = ["create-api-key", "back-end"]
    for scope in scopes:
        args += ["--scope", scope]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


def test_a_three_step_reminder_on_dates_uploaded_through_the_batch_api(
    app, live_server, page, personas, sandbox, template, screenshot_dir
):
    zone = ZoneInfo(app.config["TIMEZONE"])
    today = datetime.now(zone).date()
    openids = sandbox.openids_all()[:6]
    granted_users(app, sandbox, template, openids[:3])  # three hold a credit, three never granted

    # The company's back end: declare the date once, then upload the users with their dates.
    headers = api_key(app, "users")
    declared = requests.put(
        f"{live_server}/api/v1/attributes/{KEY}",
        json={"type": "date", "label": "会员到期日"},
        headers=headers,
        timeout=10,
    )
    assert declared.status_code in (200, 201), declared.text
    days = [1, 3, 7, 7, 10, 20]
    uploaded = requests.post(
        f"{live_server}/api/v1/users/batch",
        json={
            "users": [
                {
                    "openid": openid,
                    "attributes": {KEY: (today + timedelta(days=d)).isoformat()},
                    "tags": ["member"],
                }
                for openid, d in zip(openids, days, strict=True)
            ]
        },
        headers=headers,
        timeout=10,
    )
    assert uploaded.status_code == 200, uploaded.text
    # The three who granted are known from their logins; the others arrive with the upload.
    assert [row["status"] for row in uploaded.json()["results"]] == ["updated"] * 3 + ["created"] * 3

    log_in(page, live_server, personas["marketer"].email, personas["marketer"].password)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/campaigns/reminders/new?template_id={template['priTmplId']}")
    page.fill("input[name=name]", "会员到期提醒")
    page.select_option("select[name=attribute]", KEY)
    page.fill("input[name=send_time]", "09:30")
    expect(page.locator("input[name=offset_1]")).to_have_value("-7")
    expect(page.locator("input[name=offset_2]")).to_have_value("-1")
    expect(page.locator("input[name=offset_3]")).to_have_value("0")
    for step in (1, 2, 3):
        for key, value in example_data(template).items():
            # A date keyword takes the user's own date, written in the keyword's format.
            typed = "{{user.attributes." + KEY + "|date}}" if key.startswith("date") else value
            page.fill(f"#s{step}-{key}", typed)
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "reminder-compose-phone-zh.png"), full_page=True)
    page.click("#reminder-form button[type=submit]")
    page.wait_for_url("**/campaigns/*")
    with app.app_context():
        reminder = db.session.scalar(sa.select(Campaign).where(Campaign.name == "会员到期提醒"))
        assert reminder.reminder["attribute"] == KEY
        assert [step["offset_days"] for step in reminder.reminder["steps"]] == [-7, -1, 0]
        assert any("|date}}" in value["value"] for value in reminder.reminder["steps"][0]["data"].values())
        reminder_id = reminder.id
        assert services.launch(reminder_id, now=datetime.now(zone)).state == CampaignState.scheduled

    page.goto(f"{live_server}/campaigns/{reminder_id}")
    expect(page.locator("#reminder-steps")).to_contain_text("7 天前")
    forecast = page.locator("#reminder-forecast")
    expect(forecast).to_be_visible()
    # The users due on the day 7 days from now (two of them) appear under the "on the day" step, and
    # the one due tomorrow under "1 day before" today.
    expect(forecast.locator(f'[data-day="{today.isoformat()}"][data-step="1"]')).to_have_count(1)
    expect(
        forecast.locator(f'[data-day="{(today + timedelta(days=7)).isoformat()}"][data-step="2"]')
    ).to_have_count(1)
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "reminder-phone-zh.png"), full_page=True)

    with app.app_context():
        db.session.get(Operator, personas["marketer"].id).locale = "en"
        db.session.commit()
    page.goto(f"{live_server}/campaigns/{reminder_id}")
    expect(page.locator("#reminder-steps")).to_contain_text("7 days before")
    expect(page.locator("#reminder-forecast")).to_contain_text("Must grant again")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "reminder-phone-en.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(screenshot_dir / "reminder-en.png"), full_page=True)
    assert page.console_errors == []
