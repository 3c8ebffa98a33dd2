"""Pages as a person sees them: log in, look at the home page in both languages, get locked out."""

from playwright.sync_api import expect

from dashboard.audit.services import record
from dashboard.extensions import db


def log_in(page, live_server, email, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def test_log_in_and_see_home_in_chinese_and_english(app, live_server, page, personas, screenshot_dir):
    with app.app_context():
        record("operator.created", target_type="operator", target_id="2", actor_email="alice@example.com")
        db.session.commit()
    page.goto(f"{live_server}/login")
    assert page.locator("h1").inner_text() == "登录通知"
    page.screenshot(path=str(screenshot_dir / "login.png"), full_page=True)

    log_in(page, live_server, "alice@example.com", personas["admin"].password)
    page.wait_for_url(f"{live_server}/")
    nav = page.locator("nav.mainnav").inner_text()
    for word in ("首页", "模板", "用户", "分群", "活动", "投递", "设置"):
        assert word in nav
    # three operators, counted from the database (the home page's own figures: tests/browser/test_home.py)
    assert page.locator(".tile:has(h2:text-is('操作员')) .figure").inner_text() == "3"

    page.click("text=English")
    page.wait_for_selector("nav.mainnav >> text=Home")
    assert "Operators" in page.locator("main").inner_text()
    assert page.console_errors == []


def test_the_audit_filter_updates_the_table_live(app, live_server, page, personas, screenshot_dir):
    with app.app_context():
        record("auth.login_failed", target_type="operator", actor_email="bob@example.com")
        record("operator.created", target_type="operator", target_id="9", actor_email="carol@example.com")
        db.session.commit()
    log_in(page, live_server, "alice@example.com", personas["admin"].password)
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/settings/audit/")
    assert "carol@example.com" in page.locator("#audit-table").inner_text()
    page.fill("input[name=actor]", "bob")
    expect(page.locator("#audit-table")).not_to_contain_text("carol@example.com")
    assert "bob@example.com" in page.locator("#audit-table").inner_text()
    assert "actor=bob" in page.url  # the filter is in the address, so it can be shared
    page.screenshot(path=str(screenshot_dir / "audit-log.png"), full_page=True)
    assert page.console_errors == []


def test_five_wrong_passwords_lock_the_account_without_saying_which_accounts_exist(
    live_server, page, personas
):
    for _ in range(5):
        log_in(page, live_server, "mark@example.com", "wrong password")
    known = page.locator(".form-error").inner_text()
    assert "锁定" in known
    # Locked: even the right password is refused, with the same sentence an unknown email gets.
    log_in(page, live_server, "mark@example.com", "correct horse battery")
    assert page.url.endswith("/login")
    assert page.locator(".form-error").inner_text() == known
    log_in(page, live_server, "nobody@example.com", "wrong password")
    assert page.locator(".form-error").inner_text() == known
