"""Watching a campaign and reading its report in a real browser: a campaign sent by the real dispatch
engine against the sandbox, its page at 390 px and 1280 px in Chinese and English, and the numbers on
the page equal to the database's."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.campaigns import services
from dashboard.deliveries.opens import record_open
from dashboard.extensions import db
from dashboard.models import Delivery
from dashboard.models.campaign import Campaign
from tests.browser.test_pages import log_in
from tests.campaigns.helpers import draft, granted_users, segment_of_grantees
from tests.campaigns.test_retry import hold, release
from tests.dispatch.conftest import config_overrides, dispatcher, template  # noqa: F401 (fixtures)
from tests.dispatch.helpers import add_user, grant


def widest(page) -> int:
    return page.evaluate(
        "Math.max(...[...document.querySelectorAll('main, main *')].map(e => e.getBoundingClientRect().right))"
    )


def shown_counts(page) -> dict[str, int]:
    return {
        key: int(page.locator(f"#campaign-progress [data-count={key}]").inner_text())
        for key in ("recipients", "sent", "failed", "skipped", "unknown", "remaining", "opens")
    }


def db_counts(app, campaign_id: int) -> dict[str, int]:
    with app.app_context():
        counts = services.counts(db.session.get(Campaign, campaign_id))
    return {
        **{k: counts[k] for k in ("recipients", "sent", "failed", "skipped", "unknown", "opens")},
        "remaining": counts["pending"],
    }


def test_progress_and_report_in_both_languages_at_390_and_1280(
    app,
    live_server,
    browser,
    personas,
    sandbox,
    template,  # noqa: F811
    dispatcher,  # noqa: F811
    screenshot_dir,
):
    openids = sandbox.openids_all()[:16]
    granted_users(app, sandbox, template, openids[:14])
    with app.app_context():  # two users we believe granted, whom WeChat knows nothing of: 43101
        for openid in openids[14:]:
            grant(add_user(openid), template["priTmplId"])
        db.session.commit()
    campaign_id = draft(
        app, template, segment_of_grantees(app, template), name="双十二大促", page="pages/order/detail?id=7"
    )
    with app.app_context():
        services.launch(campaign_id)
        ids = list(
            db.session.scalars(
                sa.select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
            )
        )
    hold(app, ids[:5])  # five wait (as if backing off) so the run is caught half way
    dispatcher.drain(20)

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, live_server, "vera@example.com", personas["viewer"].password)
        page.wait_for_url(f"{live_server}/")
        page.goto(f"{live_server}/campaigns/{campaign_id}")
        expect(page.locator("#campaign-progress")).to_contain_text("发送中")
        assert shown_counts(page) == db_counts(app, campaign_id)
        assert shown_counts(page)["remaining"] == 5 and shown_counts(page)["failed"] == 2
        expect(page.locator("#campaign-progress")).to_contain_text("用户无订阅授权 (43101)")
        assert widest(page) <= 390
        page.screenshot(path=str(screenshot_dir / "campaign-progress-zh.png"), full_page=True)

        release(app, ids[:5])
        dispatcher.drain(20)
        with app.app_context():
            services.supervise()
            for user_id, token in db.session.execute(
                sa.select(Delivery.user_id, Delivery.open_token).where(Delivery.id.in_(ids[:3]))
            ):
                record_open(user_id, token)
            db.session.commit()
        page.reload()
        expect(page.locator("#campaign-progress")).to_contain_text("已完成")
        assert shown_counts(page) == db_counts(app, campaign_id)
        assert page.locator("#campaign-bar").get_attribute("value") == "16"
        bars = page.locator("#campaign-outcomes g.bar")
        assert {bars.nth(i).get_attribute("data-count") for i in range(bars.count())} == {"14", "2"}
        expect(page.locator("#campaign-outcomes")).to_contain_text("已发送 sent")
        expect(page.locator("#campaign-report .opens")).to_contain_text("21.4%")  # 3 opens of 14 sent
        assert widest(page) <= 390
        page.screenshot(path=str(screenshot_dir / "campaign-report-zh.png"), full_page=True)

        # The log, filtered by htmx without leaving the page.
        page.select_option("#campaign-log select[name=state]", "failed")
        expect(page.locator("#campaign-log-rows .log-summary")).to_contain_text("共 2 条")
        assert re.search(r"/campaigns/\d+/deliveries\?state=failed", page.url)
        page.fill("#campaign-log input[name=openid]", openids[15][2:14])
        expect(page.locator("#campaign-log-rows .log-summary")).to_contain_text("共 1 条")
        expect(page.locator("#campaign-log-table")).to_contain_text(openids[15])
        assert widest(page) <= 390
        assert errors == []
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        log_in(page, live_server, "vera@example.com", personas["viewer"].password)
        page.wait_for_url(f"{live_server}/")
        page.click("text=English")
        page.wait_for_selector("nav.mainnav >> text=Home")
        page.goto(f"{live_server}/campaigns/{campaign_id}")
        expect(page.locator("#campaign-progress")).to_contain_text("completed")
        expect(page.locator("#campaign-outcomes")).to_contain_text("No subscription credit (43101)")
        assert shown_counts(page) == db_counts(app, campaign_id)
        main = page.evaluate("document.querySelector('main').getBoundingClientRect().right")
        assert widest(page) <= main + 1
        assert "no_grant" not in page.locator("main").inner_text()
        page.screenshot(path=str(screenshot_dir / "campaign-report-en.png"), full_page=True)
        # 1280 px in Chinese, 390 px in English: still within the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        assert widest(page) <= 390
    finally:
        context.close()
