"""The Official Account template preview on a phone (390 px) in Chinese and English: typing a value
re-renders the card in the OA's look and marks the rule it breaks, with no console (CSP) error and no
sideways scrolling. Screenshots for docs/screenshots (oa-template-preview-{zh,en}-390.png)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Operator
from dashboard.models.oa_template import OaTemplate
from dashboard.oa.followers import sync_followers
from dashboard.oa.templates import sync_oa_templates
from dashboard.wechat.oa import get_oa_client
from tests.api.live import mp_overrides
from tests.browser.test_oa_channels import log_in
from tests.browser.test_phone import OVERFLOW, PHONE
from tests.oa.helpers import oa_overrides


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), **oa_overrides(sandbox), "SANDBOX_MODE": True}


@pytest.mark.parametrize(
    ("locale", "browser_locale", "rule_text"),
    [("zh", "zh-CN", "最多 12 位数字"), ("en", "en-US", "at most 12 digits")],
)
def test_oa_template_preview_on_a_phone(
    app, browser, live_server, personas, sandbox, screenshot_dir, locale, browser_locale, rule_text
):
    with app.app_context():
        sync_oa_templates(get_oa_client())
        sync_followers(get_oa_client())
        db.session.get(Operator, personas["marketer"].id).locale = locale
        db.session.commit()
        template_id = db.session.scalar(select(OaTemplate.id).where(OaTemplate.title == "账单状态提醒"))
    context = browser.new_context(viewport=PHONE, locale=browser_locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        log_in(page, live_server, personas["marketer"].email)
        page.goto(f"{live_server}/templates/official-account/{template_id}")
        page.fill("#kw_thing1", "2024年1月水费")
        page.fill("#kw_amount2", "¥1234567890123")
        page.wait_for_selector('.oa-line.invalid[data-keys="amount2"]')
        assert rule_text in page.locator("#preview-card").inner_text()
        overflow = page.evaluate(OVERFLOW)
        assert overflow["scrollWidth"] <= PHONE["width"], overflow
        page.locator("#preview-card").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / f"oa-template-preview-{locale}-390.png"), full_page=True)
        page.fill("#kw_amount2", "¥56.30")
        page.wait_for_selector('.oa-line.invalid[data-keys="amount2"]', state="detached")
        assert errors == []
    finally:
        context.close()
