"""The catalog in a real browser: type into the preview, watch the card, apply a fix, send a test.

Lives in tests/browser to share its one Chromium (a second sync Playwright in the same process fails);
the catalog's other tests are in tests/catalog. Screenshots go to $TONGZHI_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dashboard.catalog import sync
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import WechatUser
from dashboard.models.catalog import MessageTemplate
from tests.api.live import mp_overrides

TOO_LONG = "云南小粒咖啡豆精品礼盒装五百克两袋加赠手冲"  # 21 characters


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


def log_in(page, live_server, email, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def test_type_into_the_preview_see_the_error_fix_it_and_send(
    app, live_server, page, personas, sandbox, screenshot_dir
):
    with app.app_context():
        sync.apply_sync(sync.plan_sync(sync.fetch_remote()))
        db.session.commit()
        template = db.session.scalar(
            db.select(MessageTemplate).where(MessageTemplate.title == "订单发货提醒")
        )
        template_pk, template_id = template.id, template.template_id
    openid = sandbox.openids()[0]
    sandbox.grant(openid, template_id)
    with app.app_context():  # Tongzhi's ledger learns the accept too: a test send spends a credit
        user = WechatUser(openid=openid)
        db.session.add(user)
        db.session.flush()
        record_answers(user.id, [(template_id, "accept")], source="client")
        db.session.commit()

    log_in(page, live_server, "mark@example.com", personas["marketer"].password)
    page.goto(f"{live_server}/templates")
    expect(page.locator("#catalog-table")).to_contain_text("订单发货提醒")
    page.screenshot(path=str(screenshot_dir / "templates.png"), full_page=True)

    page.goto(f"{live_server}/templates/{template_pk}")
    card = page.locator("#preview-card")
    expect(card).to_contain_text("进入小程序查看")
    expect(card).to_contain_text("所有取值都符合微信的规则")

    # Typing updates the card without a page load.
    page.fill("#kw_character_string1", "SF20240101")
    expect(card.locator(".wx-row[data-keys=character_string1] .wx-value")).to_have_text("SF20240101")
    page.fill("#kw_thing2", TOO_LONG)
    row = card.locator(".wx-row[data-keys=thing2]")
    expect(row).to_have_class(re.compile(r"\binvalid\b"))
    expect(card.locator(".wx-issue.error[data-key=thing2]")).to_contain_text("最多 20 个字符（当前 21 个）")
    page.screenshot(path=str(screenshot_dir / "template-preview.png"), full_page=True)

    page.click(".wx-fix[data-key=thing2] button")
    expect(page.locator("#kw_thing2")).to_have_value(TOO_LONG[:19] + "…")
    expect(page.locator("#preview-card")).to_contain_text("所有取值都符合微信的规则")
    expect(page.locator("#preview-card .wx-row[data-keys=thing2]")).not_to_have_class(
        re.compile(r"\binvalid\b")
    )

    # The card's language follows the lang choice.
    # The fix swapped the whole panel: let htmx finish settling it before typing into the new form.
    expect(page.locator("#preview-panel")).not_to_have_class(re.compile(r"htmx-(settling|added)"))
    expect(page.locator("#preview-form")).not_to_have_class(re.compile(r"htmx-(settling|added|request)"))
    page.select_option("#lang", "en_US")
    expect(page.locator("#preview-card")).to_contain_text("View in mini program")
    page.select_option("#lang", "zh_CN")
    expect(page.locator("#preview-card")).to_contain_text("进入小程序查看")

    # Typing the openid redraws the panel after a 300 ms pause: let that finish first, or the redraw
    # lands after the test send's answer and wipes it.
    with page.expect_response(lambda response: "/preview" in response.url):
        page.fill("#openid", openid)
    expect(page.locator("#preview-form")).not_to_have_class(re.compile(r"htmx-(settling|added|request)"))
    page.click("text=发送测试消息")
    expect(page.locator("#test-send-result")).to_contain_text("已发送")
    msgid = page.locator("#test-send-result .msgid").inner_text()
    assert msgid.isdigit()
    assert [str(m["msgid"]) for m in sandbox.messages()] == [msgid]
    page.screenshot(path=str(screenshot_dir / "template-test-send.png"), full_page=True)
    assert page.console_errors == []
