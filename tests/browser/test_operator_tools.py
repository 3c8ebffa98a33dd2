"""In Chromium at phone width: an admin resets a password and disables an operator through its
confirmation; the reset operator must choose a new password; a marketer imports a CSV and watches it go."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.models import Operator, WechatUser

PHONE = {"width": 390, "height": 844}


def new_page(browser):
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    return page


def log_in(page, live_server, email, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_an_admin_resets_a_password_and_disables_with_a_confirmation(
    browser, live_server, app, personas, screenshot_dir
):
    page = new_page(browser)
    try:
        log_in(page, live_server, "alice@example.com", personas["admin"].password)
        page.wait_for_url(f"{live_server}/")
        mark = personas["marketer"].id
        page.goto(f"{live_server}/settings/operators/")
        page.locator(f"#operator-{mark}").get_by_role("link", name="重置密码").click()
        expect(page.locator("h1")).to_contain_text("mark@example.com")
        assert fits(page)
        page.get_by_role("button", name="设置临时密码").click()
        temporary = page.locator("#temporary-password").inner_text()
        assert len(temporary) >= 10 and fits(page)
        page.screenshot(path=str(screenshot_dir / "operator-password-reset.png"), full_page=True)

        vera = personas["viewer"].id
        page.goto(f"{live_server}/settings/operators/")
        row = page.locator(f"#operator-{vera}")
        row.locator("input[type=checkbox]").check()
        row.get_by_role("button", name="保存").click()
        dialog = page.locator("#confirm-disable")
        expect(dialog).to_contain_text("停用 vera@example.com？")
        expect(dialog).to_contain_text("会立即被登出")
        assert fits(page)
        with app.app_context():
            assert not db.session.get(Operator, vera).is_disabled  # nothing yet
        page.screenshot(path=str(screenshot_dir / "operator-disable-confirm.png"), full_page=True)
        dialog.get_by_role("button", name="停用 vera@example.com").click()
        expect(page.locator(".flash-success")).to_contain_text("vera@example.com")
        with app.app_context():
            assert db.session.get(Operator, vera).is_disabled
        assert page.console_errors == []
    finally:
        page.context.close()
    # Mark, in his own browser, logs in with the temporary password and is asked for his own.
    page = new_page(browser)
    try:
        log_in(page, live_server, "mark@example.com", temporary)
        page.wait_for_url(f"{live_server}/account/password")
        expect(page.locator("main")).to_contain_text("管理员为你设置了临时密码")
        page.goto(f"{live_server}/campaigns/")
        page.wait_for_url(f"{live_server}/account/password")
        page.fill("input[name=current_password]", temporary)
        page.fill("input[name=new_password]", "marks own password")
        page.fill("input[name=confirm]", "marks own password")
        page.locator("main button[type=submit]").click()
        page.wait_for_url(f"{live_server}/")
        assert fits(page)
    finally:
        page.context.close()


def test_a_marketer_imports_a_gbk_csv_and_sees_it_written(
    browser, live_server, app, personas, tmp_path, screenshot_dir
):
    rows = ["openid,nickname,tags,城市,会员等级"] + [
        f"o{n:027d},用户{n},vip,杭州,{n % 5}" for n in range(4_500)
    ]
    csv_file = tmp_path / "用户.csv"
    csv_file.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    page = new_page(browser)
    try:
        log_in(page, live_server, "mark@example.com", personas["marketer"].password)
        page.wait_for_url(f"{live_server}/")
        page.goto(f"{live_server}/users/import")
        expect(page.locator("#import-limits")).to_contain_text("10 MB")
        assert fits(page)
        page.set_input_files("input[type=file]", str(csv_file))
        page.get_by_role("button", name="检查并导入").click()
        expect(page.locator("#import-done")).to_contain_text("已导入 4500 行")
        expect(page.locator("#import-run")).to_contain_text("GBK/GB18030")
        # Of the progress steps the page received, only the last one shows.
        visible = page.locator(".import-step progress:visible")
        expect(visible).to_have_count(1)
        assert visible.get_attribute("value") == "4500"
        assert re.search(r"4,500 / 4,500", page.locator(".import-step:visible").inner_text())
        assert fits(page) and page.console_errors == []
        page.screenshot(path=str(screenshot_dir / "users-import-done.png"), full_page=True)
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count()).select_from(WechatUser)) == 4_500
    finally:
        page.context.close()
