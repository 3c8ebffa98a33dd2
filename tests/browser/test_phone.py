"""The console on a phone (390 px): the navigation folds into a menu, and no page scrolls sideways.

One of each thing is seeded (a template, a user, a delivery, a segment, a campaign, an operator and an
API key) so every page reachable from the menu, and the detail pages behind them, has real rows to lay
out. Wide tables may scroll inside their own box; the document itself must not.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dashboard.apikeys.services import create_key
from dashboard.deliveries.services import create_delivery, send_now
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import DeliverySource, DeliveryState, WechatUser
from dashboard.models.catalog import MessageTemplate
from tests.api.live import mp_overrides
from tests.campaigns.helpers import draft, granted_users, segment_of_grantees
from tests.sandbox_api import example_data

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# Where the page is wider than the screen, name the widest elements so a failure says what to fix.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const culprits = [];
  for (const element of document.querySelectorAll("body *")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0) continue;
    const spill = getComputedStyle(element).overflowX === "visible"
      ? Math.max(0, element.scrollWidth - element.clientWidth) : 0;  // text running out of its box
    const right = box.right + spill;
    if (right <= width + 0.5) continue;
    let inside = false;  // a child of a box that scrolls (or clips) by itself is fine, unless it is
    const placed = ["absolute", "fixed"].includes(getComputedStyle(element).position);  // placed outside it
    for (let up = element.parentElement; up && up !== document.body && !placed; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (style.overflowX !== "visible") { inside = true; break; }
    }
    if (inside) continue;
    const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
      + (element.className && typeof element.className === "string"
         ? "." + element.className.trim().split(/\\s+/).join(".") : "");
    culprits.push(name + " right=" + Math.round(right));
  }
  // A table may scroll inside its box, but not to reach a control: those rows stack (stack-rows).
  const outOfReach = [];
  for (const table of document.querySelectorAll("main table")) {
    const edge = Math.min(table.getBoundingClientRect().right, width);
    for (const control of table.querySelectorAll("a, button, select, input:not([type=hidden]), textarea")) {
      const box = control.getBoundingClientRect();
      if (box.width > 0 && box.right > edge + 0.5) {
        outOfReach.push(control.tagName.toLowerCase() + " " + (control.textContent || control.name || "").trim().slice(0, 24)
          + " in table" + (table.id ? "#" + table.id : "." + table.className.trim().split(/\\s+/).join(".")));
      }
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, culprits: culprits.slice(0, 8),
          outOfReach: outOfReach.slice(0, 8)};
}"""


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), "SANDBOX_MODE": True}  # the banner is part of the top of every page


@pytest.fixture
def seeded(app, sandbox, personas) -> dict[str, int]:
    """One of each thing a page shows: its ids, by kind."""
    template = sandbox.templates(2)[0]
    openid = sandbox.openids()[0]
    granted_users(app, sandbox, template, [openid])
    sandbox.grant(openid, template["priTmplId"])  # a second credit (here and below): the test send spends one
    segment_id = segment_of_grantees(app, template, name="已授权订单提醒的用户")
    campaign_id = draft(app, template, segment_id, name="双十二预热活动：会员专享优惠券提醒")
    with app.app_context():
        user_id = db.session.scalar(db.select(WechatUser.id).where(WechatUser.openid == openid))
        record_answers(user_id, [(template["priTmplId"], "accept")], source="client")
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=template["priTmplId"],
            data=example_data(template),
            requested_by_id=personas["admin"].id,
        )
        delivery = send_now(delivery)
        assert delivery.state is DeliveryState.sent
        key, _plaintext = create_key("order-service-production", ["send", "read"], personas["admin"].id)
        db.session.commit()
        ids = {
            "template": db.session.scalar(
                db.select(MessageTemplate.id).where(MessageTemplate.template_id == template["priTmplId"])
            ),
            "user": user_id,
            "delivery": delivery.id,
            "segment": segment_id,
            "campaign": campaign_id,
            "key": key.id,
            "operator": personas["marketer"].id,
        }
    return ids


def pages_to_walk(ids: dict[str, int]) -> list[str]:
    return [
        "/",
        "/templates",
        "/templates/library",
        "/templates/new",
        "/templates/sync",
        f"/templates/{ids['template']}",
        f"/templates/{ids['template']}/edit",
        f"/templates/{ids['template']}/delete",
        "/users",
        f"/users/{ids['user']}",
        "/users/funnel",
        "/users/import",
        "/segments",
        "/segments/new",
        f"/segments/{ids['segment']}",
        f"/segments/{ids['segment']}/edit",
        "/campaigns/",
        "/campaigns/new",
        f"/campaigns/{ids['campaign']}",
        f"/campaigns/{ids['campaign']}/edit",
        "/deliveries/",
        f"/deliveries/{ids['delivery']}",
        "/settings/",
        "/settings/operators/",
        f"/settings/operators/{ids['operator']}/password",
        "/settings/audit/",
        "/settings/api-keys/",
        f"/settings/api-keys/{ids['key']}/revoke",
        "/account/password",
    ]


def log_in(page, live_server, email, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def new_page(browser, viewport, **options):
    context = browser.new_context(viewport=viewport, locale="zh-CN", **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    return page


def overflowing_pages(page, live_server, paths: list[str]) -> dict[str, dict]:
    """The pages (of ``paths``) wider than the phone, or with a link, button or field in a table that
    only scrolling the table sideways reaches, each with the elements at fault."""
    wide = {}
    for path in paths:
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status < 500, path
        found = page.evaluate(OVERFLOW)
        if found["scrollWidth"] > PHONE["width"] or found["outOfReach"]:
            wide[path] = found
    return wide


@pytest.mark.parametrize(("role", "language"), [("admin", "zh"), ("viewer", "zh"), ("admin", "en")])
def test_every_page_fits_a_phone(browser, live_server, personas, seeded, role, language):
    page = new_page(browser, PHONE)
    try:
        log_in(page, live_server, personas[role].email, personas[role].password)
        if language == "en":  # the switch is in the menu too
            page.locator("header.topbar summary").click()
            page.get_by_role("button", name="English").click()
            expect(page.locator("header.topbar summary")).to_contain_text("Menu")
        paths = pages_to_walk(seeded)
        library = page.goto(f"{live_server}/templates/library")
        assert library is not None
        if library.ok:  # a category of WeChat's public library, and a title in it, as the pages link them
            category = page.locator("select[name=category] option:not([value=''])").first.get_attribute(
                "value"
            )
            paths.insert(3, f"/templates/library?category={category}")
            page.goto(f"{live_server}/templates/library?category={category}")
            href = page.locator("main a[href*='/templates/library/']").first.get_attribute("href")
            paths.insert(4, href)
        assert overflowing_pages(page, live_server, paths) == {}
        # A viewer walks the admin's pages too and gets the "not allowed" page: that one must fit as well.
        assert [error for error in page.console_errors if "403 (FORBIDDEN)" not in error] == []
    finally:
        page.context.close()


def test_the_menu_folds_on_a_phone_and_logs_out(browser, live_server, personas, seeded, screenshot_dir):
    page = new_page(browser, PHONE)
    try:
        log_in(page, live_server, "alice@example.com", personas["admin"].password)
        toggle = page.locator("header.topbar summary")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("nav.mainnav")).to_be_hidden()
        expect(page.get_by_role("button", name="退出登录")).to_be_hidden()
        page.screenshot(path=str(screenshot_dir / "phone-menu-closed.png"))

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        for word in ("首页", "模板", "用户", "分群", "活动", "投递", "设置"):
            expect(page.locator("nav.mainnav").get_by_role("link", name=word)).to_be_visible()
        expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        assert page.evaluate(OVERFLOW)["scrollWidth"] <= PHONE["width"]
        page.screenshot(path=str(screenshot_dir / "phone-menu-open.png"))

        # The keyboard: Escape folds it and gives focus back to the toggle; Enter opens it again.
        page.keyboard.press("Escape")
        expect(page.locator("nav.mainnav")).to_be_hidden()
        expect(toggle).to_be_focused()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        page.keyboard.press("Enter")
        expect(page.locator("nav.mainnav")).to_be_visible()

        # A link in the menu goes where it says; the next page starts with the menu folded.
        page.locator("nav.mainnav").get_by_role("link", name="投递").click()
        page.wait_for_url(f"{live_server}/deliveries/")
        expect(page.locator("nav.mainnav")).to_be_hidden()

        page.locator("header.topbar summary").click()
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(f"{live_server}/login")
        expect(page.locator("h1")).to_have_text("登录通知")
        assert page.evaluate(OVERFLOW)["scrollWidth"] <= PHONE["width"]  # the login page has no menu
        assert page.console_errors == []
    finally:
        page.context.close()


def test_the_menu_works_without_javascript(browser, live_server, personas):
    page = new_page(browser, PHONE, java_script_enabled=False)
    try:
        log_in(page, live_server, "vera@example.com", personas["viewer"].password)
        expect(page.locator("nav.mainnav")).to_be_hidden()
        page.locator("header.topbar summary").click()
        expect(page.locator("nav.mainnav").get_by_role("link", name="用户")).to_be_visible()
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(f"{live_server}/login")
    finally:
        page.context.close()


def test_on_a_desktop_the_navigation_stays_inline(browser, live_server, personas, screenshot_dir):
    page = new_page(browser, DESKTOP)
    try:
        log_in(page, live_server, "alice@example.com", personas["admin"].password)
        expect(page.locator("header.topbar summary")).to_be_hidden()
        expect(page.locator("nav.mainnav").get_by_role("link", name="设置")).to_be_visible()
        expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        header = page.locator("header.topbar").bounding_box()
        assert header is not None and header["height"] == 48  # one line, as before
        page.screenshot(path=str(screenshot_dir / "desktop-home.png"))
        assert page.console_errors == []
    finally:
        page.context.close()
