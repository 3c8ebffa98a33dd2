"""A marketer composes a campaign in a real browser, in Chinese: the keyword rows follow the template, the
card follows the values (htmx), a value that can never pass is named, the draft is saved with its schedule
in Asia/Shanghai, and the dry run shows what a launch would do. The pages fit 390 px and 1280 px."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.models import WechatUser
from dashboard.models.campaign import Campaign
from tests.browser.htmx import choose
from tests.browser.test_pages import log_in
from tests.browser.test_segments import widest
from tests.campaigns.helpers import granted_users, segment_of_grantees
from tests.sandbox_api import example_data


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


def people(app, sandbox, template, count: int = 6) -> list[str]:
    openids = sandbox.openids_all()[:count]
    granted_users(app, sandbox, template, openids)
    with app.app_context():
        for i, openid in enumerate(openids):
            user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == openid))
            # The first one's name is too long for a thing with the campaign's words: the dry run names it.
            user.nickname = "名字非常非常非常非常长的一位老朋友" if i == 0 else f"用户{i}"
            user.attributes = {"city": "上海" if i % 2 else "北京"}
        db.session.commit()
    segment_of_grantees(app, template, name="已授权用户")
    return openids


def another_template(app, sandbox) -> dict:
    """A second template in the catalog, so the form can switch between them."""
    from tests.dispatch.helpers import register

    other = sandbox.templates(2)[1]
    with app.app_context():
        register(other)
        db.session.commit()
    return other


def compose(
    page, live_server, template: dict, other: dict, openids: list[str], width: int, screenshot_dir
) -> None:
    page.goto(f"{live_server}/campaigns/new")
    expect(page.locator("#schedule-zone")).to_contain_text("Asia/Shanghai")
    # The keyword rows follow the chosen template (htmx).
    choose(page, "select[name=template_id]", other["priTmplId"], "/compose/keywords")
    for key in example_data(other):
        expect(page.locator(f"select[name=source-{key}]")).to_be_attached()
    choose(page, "select[name=template_id]", template["priTmplId"], "/compose/keywords")
    page.fill("input[name=name]", "春季上新")
    for key, value in example_data(template).items():
        page.select_option(f"select[name=source-{key}]", "text")
        page.fill(f"input[name=value-{key}]", value)
    thing = next(key for key in example_data(template) if key.startswith("thing"))
    page.select_option(f"select[name=source-{thing}]", "variables")
    page.fill(f"input[name=value-{thing}]", "{{user.nickname}}的专属优惠")
    page.fill(f"input[name=fallback-{thing}]", "专属优惠")
    # The card follows the values, filled for the chosen sample user.
    expect(page.locator("#preview-card")).to_contain_text("的专属优惠")
    page.select_option("#sample-user", openids[0])
    expect(page.locator("#preview-skipped")).to_contain_text(thing)  # this user would be skipped
    page.select_option("#sample-user", openids[1])
    expect(page.locator("#preview-card")).to_contain_text("用户1的专属优惠")
    page.check("input[name=when][value=schedule]")
    page.fill("input[name=scheduled_at]", "2030-03-01T09:30")
    page.check("input[name=quiet_hours]")
    assert widest(page) <= width
    page.screenshot(path=str(screenshot_dir / f"campaign-compose-zh-{width}.png"), full_page=True)
    if width == 390:
        page.screenshot(path=str(screenshot_dir / "campaign-compose-zh.png"), full_page=True)


def test_compose_save_and_dry_run_at_390_and_1280(
    app, live_server, browser, personas, sandbox, template, screenshot_dir
):
    openids = people(app, sandbox, template)
    other = another_template(app, sandbox)
    for width, height in ((390, 844), (1280, 900)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        try:
            log_in(page, live_server, "mark@example.com", personas["marketer"].password)
            page.wait_for_url(f"{live_server}/")
            page.goto(f"{live_server}/campaigns/")
            assert widest(page) <= width
            page.click("#new-campaign")
            page.wait_for_url(f"{live_server}/campaigns/new")
            compose(page, live_server, template, other, openids, width, screenshot_dir)

            # A fixed value that no recipient could be sent is named next to its field; nothing is saved.
            date_key = next(key for key in example_data(template) if key.startswith("date"))
            page.fill(f"input[name=value-{date_key}]", "明天")
            page.click("#save-campaign")
            expect(page.locator(f'[data-key="{date_key}"] .kw-error')).to_contain_text(date_key)
            page.fill(f"input[name=value-{date_key}]", example_data(template)[date_key])
            page.fill("input[name=scheduled_at]", "2030-03-01T09:30")
            page.click("#save-campaign")
            page.wait_for_url(f"{live_server}/campaigns/*")
            with app.app_context():
                saved = db.session.scalars(sa.select(Campaign).order_by(Campaign.id.desc())).first()
                assert saved.scheduled_at.isoformat() == "2030-03-01T01:30:00+00:00"
            page.goto(f"{live_server}/campaigns/{saved.id}/edit")
            expect(page.locator("input[name=scheduled_at]")).to_have_value("2030-03-01T09:30")
            page.click("#run-dry-run")
            expect(page.locator("#dry-run-total")).to_have_text("6")
            expect(page.locator("#dry-run-skipped")).to_have_text("1")
            expect(page.locator("#dry-run-keywords")).to_contain_text(
                "名字非常非常非常非常长的一位老朋友的专属优惠"
            )
            assert widest(page) <= width
            name = "campaign-dry-run-zh.png" if width == 390 else f"campaign-dry-run-zh-{width}.png"
            page.locator("#dry-run-card").screenshot(path=str(screenshot_dir / name))
            page.goto(f"{live_server}/campaigns/")
            expect(page.locator("#campaigns-table")).to_contain_text("春季上新")
            assert widest(page) <= width
            page.screenshot(path=str(screenshot_dir / f"campaign-list-zh-{width}.png"), full_page=True)
            assert errors == []
        finally:
            context.close()
