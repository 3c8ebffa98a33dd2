"""A recurring campaign in Chromium: composed with "Repeat" (the form shows only the fields the repeat
uses), launched, its page with the schedule, next occurrence and runs, at 390 px in Chinese and English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models import Operator
from dashboard.models.campaign import Campaign, CampaignState
from tests.browser.test_home import DESKTOP, MAIN_SPILL, PHONE
from tests.browser.test_pages import log_in
from tests.campaigns.helpers import granted_users, segment_of_grantees
from tests.sandbox_api import example_data


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


def test_compose_a_weekly_campaign_and_read_its_runs_on_a_phone(
    app, live_server, page, personas, sandbox, template, screenshot_dir
):
    openids = sandbox.openids_all()[:3]
    granted_users(app, sandbox, template, openids)
    segment_of_grantees(app, template, name="已授权用户")
    log_in(page, live_server, personas["marketer"].email, personas["marketer"].password)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/campaigns/new")
    page.fill("input[name=name]", "每周提醒")
    for key, value in example_data(template).items():
        page.select_option(f"select[name='source-{key}']", "text")
        page.fill(f"[name='value-{key}']", value)
    expect(page.locator("#repeat-fields")).to_be_hidden()
    page.check("input[name=when][value=repeat]")
    expect(page.locator("#repeat-fields")).to_be_visible()
    expect(page.locator(".schedule-at")).to_be_hidden()
    expect(page.locator(".repeat-cron")).to_be_hidden()  # every day: time only
    page.select_option("select[name=repeat]", "weekly")
    expect(page.locator(".repeat-weekdays")).to_be_visible()
    page.check("input[name=weekdays][value='1']")
    page.check("input[name=weekdays][value='4']")
    page.fill("input[name=repeat_time]", "08:30")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "recurring-compose-phone-zh.png"), full_page=True)
    page.click("#save-campaign")
    page.wait_for_url("**/campaigns/*")
    with app.app_context():
        parent = db.session.scalar(sa.select(Campaign).where(Campaign.name == "每周提醒"))
        assert parent.schedule == {"repeat": "weekly", "time": "08:30", "weekdays": [1, 4]}
        parent_id = parent.id
        services.launch(parent_id, now=datetime(2026, 12, 6, tzinfo=UTC))  # a Sunday
        for day in (7, 10):  # Monday and Thursday, 08:30 in Shanghai
            services.supervise(datetime(2026, 12, day, 0, 30, 5, tzinfo=UTC))
        assert db.session.get(Campaign, parent_id).state == CampaignState.scheduled
    page.goto(f"{live_server}/campaigns/{parent_id}")
    expect(page.locator("#schedule-words")).to_contain_text("每周一、周四 08:30")
    expect(page.locator("#campaign-runs tr[data-run]")).to_have_count(2)
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "recurring-campaign-phone-zh.png"), full_page=True)
    page.locator("#campaign-runs tr[data-run] a").first.click()
    expect(page.locator("#run-of")).to_contain_text("每周提醒")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0

    with app.app_context():
        db.session.get(Operator, personas["marketer"].id).locale = "en"
        db.session.commit()
    page.goto(f"{live_server}/campaigns/{parent_id}")
    expect(page.locator("#schedule-words")).to_contain_text("Every Mon, Thu at 08:30")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "recurring-campaign-phone-en.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(screenshot_dir / "recurring-campaign-en.png"), full_page=True)
    assert page.console_errors == []
