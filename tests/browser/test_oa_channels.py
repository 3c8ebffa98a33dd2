"""The Official Account's pages on a phone (390 px) and a desktop: Settings → Channels and a user's
follower tile, in Chinese, without sideways scrolling. Screenshots for docs/screenshots."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import WechatUser
from dashboard.oa.followers import sync_followers
from dashboard.wechat.oa import get_oa_client
from tests.api.live import mp_overrides
from tests.browser.test_phone import DESKTOP, OVERFLOW, PHONE
from tests.conftest import PERSONA_PASSWORD
from tests.oa.helpers import oa_get, oa_overrides


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), **oa_overrides(sandbox), "SANDBOX_MODE": True}


def log_in(page, live_server, email):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PERSONA_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def test_channels_and_the_follower_tile_fit_a_phone(
    app, browser, live_server, personas, sandbox, screenshot_dir
):
    follower = next(f for f in oa_get(sandbox, "/followers")["followers"] if f["subscribed"] and f["unionid"])
    with app.app_context():
        db.session.add(WechatUser(openid=follower["mp_openid"], unionid=follower["unionid"], nickname="王伟"))
        db.session.commit()
        sync_followers(get_oa_client())
        user_id = db.session.scalar(select(WechatUser.id).where(WechatUser.openid == follower["mp_openid"]))
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        context = browser.new_context(viewport=viewport, locale="zh-CN")
        page = context.new_page()
        try:
            log_in(page, live_server, personas["viewer"].email)
            page.goto(f"{live_server}/settings/channels/")
            assert "客服消息" in page.content() and "45103" in page.content()
            overflow = page.evaluate(OVERFLOW)
            assert overflow["scrollWidth"] <= viewport["width"], overflow
            page.screenshot(path=str(screenshot_dir / f"{name}-channels.png"), full_page=True)
            page.goto(f"{live_server}/users/{user_id}")
            tile = page.locator("#user-official-account")
            assert follower["openid"] in tile.inner_text() and "已关注公众号" in tile.inner_text()
            overflow = page.evaluate(OVERFLOW)
            assert overflow["scrollWidth"] <= viewport["width"], overflow
            page.screenshot(path=str(screenshot_dir / f"{name}-user-official-account.png"), full_page=True)
        finally:
            context.close()
