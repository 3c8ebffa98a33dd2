"""The confirmations before damage (issue 12), in a real browser at phone width (390 px): deleting a
template and revoking an API key go through a page that names the thing and its consequence, and a
force resend names its user; pressing the button without ticking the box changes nothing.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.apikeys.services import create_key
from dashboard.catalog import sync
from dashboard.extensions import db
from dashboard.models import ApiKey, Delivery, DeliverySource, DeliveryState
from dashboard.models.catalog import MessageTemplate
from tests.api.live import mp_overrides

from .test_catalog import log_in

FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    yield page
    context.close()


def test_delete_revoke_and_resend_ask_first_and_an_unticked_box_changes_nothing(
    app, live_server, phone, personas, sandbox, screenshot_dir
):
    page = phone
    with app.app_context():
        sync.apply_sync(sync.plan_sync(sync.fetch_remote()))
        template = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.title == "订单发货提醒")
        )
        template_pk, title = template.id, template.title
        key, _plaintext = create_key("订单系统", ["send"], None)
        key_id = key.id
        openid = sandbox.openids()[0]
        unknown = Delivery(
            openid=openid,
            template_id=template.template_id,
            data={},
            source=DeliverySource.api,
            state=DeliveryState.unknown,
        )
        db.session.add(unknown)
        db.session.commit()
        delivery_id = unknown.id
    log_in(page, live_server, "alice@example.com", personas["admin"].password)

    # Deleting a template.
    page.goto(f"{live_server}/templates/{template_pk}")
    page.click("text=从模板库中删除…")
    expect(page.locator("h1")).to_have_text(f"删除模板“{title}”？")
    expect(page.locator(".danger-consequences")).to_contain_text("条使用它的投递")
    assert page.evaluate(FITS)
    page.screenshot(path=str(screenshot_dir / "confirm-delete-template.png"), full_page=True)
    page.click("button:has-text('删除模板')")
    expect(page.locator(".confirm-field .error")).to_have_text("请勾选确认框后再删除；没有删除任何内容。")
    with app.app_context():
        assert db.session.get(MessageTemplate, template_pk) is not None
    page.check("input[name=confirm]")
    page.click("button:has-text('删除模板')")
    page.wait_for_url(re.compile(r"/templates$"))
    expect(page.locator("main")).to_contain_text(f"模板“{title}”已删除")
    with app.app_context():
        assert db.session.get(MessageTemplate, template_pk) is None

    # Revoking an API key.
    page.goto(f"{live_server}/settings/api-keys/")
    page.click("button:has-text('吊销…')")
    expect(page.locator("h1")).to_have_text("吊销密钥“订单系统”？")
    assert page.evaluate(FITS)
    page.click("button:has-text('吊销密钥')")
    expect(page.locator("main .error")).to_have_text("请勾选确认框；密钥没有被吊销。")
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None
    page.check("input[name=confirm]")
    page.click("button:has-text('吊销密钥')")
    page.wait_for_url(re.compile(r"/settings/api-keys/$"))
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is not None

    # Force-resending an unknown delivery: the box names the user; unticked, nothing is queued.
    page.goto(f"{live_server}/deliveries/{delivery_id}")
    expect(page.locator("form.warn-box label")).to_contain_text(
        f"用户 {openid} 可能会收到两次投递 #{delivery_id}"
    )
    assert page.evaluate(FITS)
    page.click("button:has-text('强制重发')")
    expect(page.locator("main")).to_contain_text("请勾选确认")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 1
    assert page.errors == []
