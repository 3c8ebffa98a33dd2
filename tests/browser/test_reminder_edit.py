"""Editing a draft date reminder in Chromium at 390 px: from its page, Edit, a step's value changed, saved,
and the new value on its page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models.user_attribute import UserAttribute
from tests.browser.test_home import MAIN_SPILL, PHONE
from tests.browser.test_pages import log_in
from tests.campaigns.helpers import granted_users
from tests.sandbox_api import example_data

KEY = "membership_expires_at"


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


def draft_reminder(app, sandbox, template: dict) -> int:
    granted_users(app, sandbox, template, [])
    data = {key: {"value": value} for key, value in example_data(template).items()}
    with app.app_context():
        db.session.add(UserAttribute(key=KEY, type="date", label="会员到期日"))
        db.session.commit()
        campaign = services.create_campaign(
            {
                "name": "会员到期提醒",
                "template_id": template["priTmplId"],
                "segment_id": None,
                "reminder": {
                    "attribute": KEY,
                    "time": "09:30",
                    "steps": [{"offset_days": -7, "data": data}, {"offset_days": 0, "data": data}],
                },
            }
        )
        return campaign.id


def test_a_step_value_changed_on_the_edit_page(
    app, live_server, page, personas, sandbox, template, screenshot_dir
):
    reminder_id = draft_reminder(app, sandbox, template)
    key = next(key for key in example_data(template) if key.startswith("thing"))  # takes Chinese words
    log_in(page, live_server, personas["marketer"].email, personas["marketer"].password)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/campaigns/{reminder_id}")
    page.click("#action-edit")
    page.wait_for_url(f"**/campaigns/reminders/{reminder_id}/edit")
    expect(page.locator("input[name=name]")).to_have_value("会员到期提醒")
    expect(page.locator("input[name=offset_2]")).to_have_value("0")
    expect(page.locator("input[name=offset_3]")).to_have_value("")
    page.fill(f"#s2-{key}", "今天到期，请续费")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    page.screenshot(path=str(screenshot_dir / "reminder-edit.png"), full_page=True)
    page.click("#reminder-save")
    page.wait_for_url(f"**/campaigns/{reminder_id}")
    expect(page.locator(".flash-success")).to_contain_text("提醒的修改已保存")
    expect(page.locator('#reminder-steps li[data-step="1"]')).to_contain_text("今天到期，请续费")
    expect(page.locator('#reminder-steps li[data-step="0"]')).not_to_contain_text("今天到期，请续费")
    assert page.evaluate(MAIN_SPILL)["worst"] <= 0
    assert page.console_errors == []


def test_the_edit_page_reads_in_both_languages_at_both_widths(
    app, live_server, page, personas, sandbox, template, screenshot_dir
):
    """Chinese and English, 1440 and 390 px: nothing spills, the labels are the page's language, the
    channel is offered in words (no raw code in the visible text)."""
    from tests.browser.test_channel_pages_layout import CODE_PATTERN, VISIBLE_TEXT, use_language

    reminder_id = draft_reminder(app, sandbox, template)
    email = personas["marketer"].email
    log_in(page, live_server, email, personas["marketer"].password)
    for lang, heading in (("zh", "编辑日期提醒"), ("en", "Edit date reminder")):
        use_language(app, email, lang)
        for width, viewport in (("1440", {"width": 1440, "height": 900}), ("390", PHONE)):
            page.set_viewport_size(viewport)
            page.goto(f"{live_server}/campaigns/reminders/{reminder_id}/edit")
            expect(page.locator("main h1")).to_contain_text(heading)
            assert page.evaluate(MAIN_SPILL)["worst"] <= 0, (lang, width)
            assert not CODE_PATTERN.search(page.evaluate(VISIBLE_TEXT)), (lang, width)
            if lang == "zh":
                assert "Save" not in page.locator("#reminder-save").inner_text()
            page.screenshot(path=str(screenshot_dir / f"reminder-edit-{lang}-{width}.png"), full_page=True)
    assert page.console_errors == []
