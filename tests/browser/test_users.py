"""A marketer finds a user by searching, opens their page, and sees balances and the grant timeline."""

from playwright.sync_api import expect

from tests.audience.conftest import (
    T_ORDER,
    people,  # noqa: F401 - fixture
)
from tests.browser.test_pages import log_in


def test_search_a_user_and_open_their_page(app, live_server, page, personas, people, screenshot_dir):  # noqa: F811
    log_in(page, live_server, "mark@example.com", personas["marketer"].password)
    page.wait_for_url(f"{live_server}/")
    page.click("nav.mainnav >> text=用户")
    page.wait_for_url(f"{live_server}/users")
    expect(page.locator("#users-table")).to_contain_text("oHong")
    page.fill("input[name=q]", "city=上海")
    expect(page.locator("#users-table")).not_to_contain_text("oHong")
    assert "q=city" in page.url
    page.click("#users-table >> text=oMing0000000000000000000001")
    page.wait_for_url(f"{live_server}/users/{people['ming']}")
    balances = page.locator("#balances-table")
    expect(balances).to_contain_text(T_ORDER)
    expect(balances.locator("td.balance").first).to_contain_text("1")
    timeline = page.locator("#timeline-table")
    for label in ("小程序上报", "弹窗事件", "发送结果", "已用于发送"):
        expect(timeline).to_contain_text(label)
    expect(page.locator("#user-settings")).to_contain_text("总开关")
    page.screenshot(path=str(screenshot_dir / "user-detail.png"), full_page=True)
    page.goto(f"{live_server}/users/funnel?days=all")
    expect(page.locator("#funnel")).to_contain_text(T_ORDER)
    page.screenshot(path=str(screenshot_dir / "user-funnel.png"), full_page=True)
    assert page.console_errors == []
