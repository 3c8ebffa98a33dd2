"""A campaign from start to finish, as marketing runs it on `make run`: the real `flask serve` (with its
dispatch worker and the WeChat sandbox it starts), driven in Chromium.

Log in, sync the templates from the sandbox, let simulated users accept a template through the
mini-program API (the sandbox reports each answer as the mini-program would), build a segment and watch
its count, compose a campaign, dry-run it, schedule it about a minute ahead, and wait: the worker starts
it at its time, the progress bar reaches 100 %, and the report's numbers equal the sandbox's own record of
what it received. Screenshots of each step, in Chinese and English, go to the screenshot folder
(``make screenshots`` writes them to docs/screenshots/).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.browser.htmx import choose
from tests.browser.test_embedded import embedded_server  # noqa: F401 - fixture
from tests.browser.test_segments import widest
from tests.sandbox_api import example_data

GRANTEES = 8
ZONE = ZoneInfo("Asia/Shanghai")  # the embedded default TIMEZONE


def one_time_template(sandbox: str) -> dict:
    templates = requests.get(f"{sandbox}/sandbox/api/templates", timeout=5).json()["templates"]
    return next(t for t in templates if t["type"] == 2)


def accept_through_the_mini_program(sandbox: str, template_id: str) -> list[str]:
    """GRANTEES simulated users tap 允许 on the template's popup, twice each (two send credits); the sandbox
    tells Tongzhi's mini-program API (code2Session login, then the grant report), exactly as the
    mini-program's helper would."""
    users = requests.get(f"{sandbox}/sandbox/api/users", timeout=5).json()["users"]
    openids = [user["openid"] for user in users[:GRANTEES]]
    for openid in openids * 2:
        answered = requests.post(
            f"{sandbox}/sandbox/api/users/{openid}/prompt",
            json={"templates": {template_id: "accept"}},
            timeout=10,
        )
        assert answered.status_code == 200, answered.text
    return openids


def sandbox_received(sandbox: str, template_id: str) -> int:
    found = requests.get(f"{sandbox}/sandbox/api/messages", params={"template_id": template_id}, timeout=5)
    return found.json()["count"]


def log_in(page, base: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "admin@tongzhi.local")
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def shoot(page, folder, name: str) -> None:
    page.screenshot(path=str(folder / name), full_page=True)


def test_a_scheduled_campaign_runs_on_make_run_and_its_report_matches_the_sandbox(
    embedded_server,  # noqa: F811 - the fixture imported above
    browser,
    screenshot_dir,
):
    base, sandbox = embedded_server["url"], embedded_server["sandbox"]
    template = one_time_template(sandbox)
    template_id = template["priTmplId"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, base, embedded_server["password"])

        # The catalog comes from WeChat (the sandbox): one sync.
        page.goto(f"{base}/templates/sync")
        page.click("form.row-form button.primary")
        page.goto(f"{base}/templates")
        expect(page.locator("main")).to_contain_text(template["title"])

        # Users accept through the mini-program API; the segment's count follows as the filter is typed.
        openids = accept_through_the_mini_program(sandbox, template_id)
        page.goto(f"{base}/segments/new")
        count = page.locator("#segment-count")
        page.fill("textarea[name=filter]", json.dumps({"tag": "nobody-has-this"}))
        expect(count).to_have_text("0")
        page.fill(
            "textarea[name=filter]", json.dumps({"grant": {"template_id": template_id, "min_credits": 1}})
        )
        expect(count).to_have_text(str(GRANTEES), timeout=15_000)
        page.fill("input[name=name]", "接受了订单通知的用户")
        shoot(page, screenshot_dir, "flow-segment-zh.png")
        page.click("button[value=save]")
        page.wait_for_url(re.compile(r".*/segments/\d+$"))
        segment_url = page.url

        # Compose: every keyword a fixed value, scheduled about a minute ahead in Asia/Shanghai.
        page.goto(f"{base}/campaigns/new")
        choose(page, "select[name=template_id]", template_id, "/compose/keywords")
        page.fill("input[name=name]", "年终回馈")
        page.select_option("select[name=segment_id]", label="接受了订单通知的用户")
        for key, value in example_data(template).items():
            page.select_option(f"select[name=source-{key}]", "text")
            page.fill(f"input[name=value-{key}]", value)
        # One send a second, so the run lasts long enough to be watched.
        page.fill("input[name=rate_per_second]", "1")
        page.check("input[name=when][value=schedule]")
        start = (datetime.now(ZONE) + timedelta(seconds=90)).replace(second=0, microsecond=0)
        page.fill("input[name=scheduled_at]", start.strftime("%Y-%m-%dT%H:%M"))
        expect(page.locator("#compose-preview-card")).to_contain_text(
            next(iter(example_data(template).values()))
        )
        shoot(page, screenshot_dir, "flow-compose-zh.png")
        page.click("#save-campaign")
        page.wait_for_url(f"{base}/campaigns/*")
        campaign_url = page.url.split("?")[0]
        campaign_id = int(campaign_url.rstrip("/").split("/")[-1])

        # The dry run, from the campaign's page: every recipient's values pass.
        page.click("#action-dry-run")
        expect(page.locator("#dry-run-total")).to_have_text(str(GRANTEES))
        expect(page.locator("#dry-run-skipped")).to_have_text("0")
        page.locator("#compose-actions").screenshot(path=str(screenshot_dir / "flow-dry-run-zh.png"))

        # Launch: with a time ahead it is scheduled, and the page names the start in the operator's zone.
        launch = page.locator("form[action$='/launch']")
        launch.locator("input[name=confirm]").check()
        launch.locator("button[type=submit]").click()
        expect(page.locator("#campaign-progress .badge")).to_have_text("已排期")
        assert sandbox_received(sandbox, template_id) == 0

        # The worker starts it at its time; the progress fragment polls until the bar is full.
        expect(page.locator("#campaign-progress .badge")).to_have_text("发送中", timeout=150_000)
        expect(page.locator("#campaign-progress .rate")).to_be_visible()
        shoot(page, screenshot_dir, "flow-progress-zh.png")
        bar = page.locator("#campaign-bar")
        expect(bar).to_have_attribute("value", str(GRANTEES), timeout=60_000)
        expect(page.locator("#campaign-progress .badge")).to_have_text("已完成", timeout=90_000)
        assert _started_at(embedded_server, campaign_id) >= start - timedelta(seconds=1), (
            "not before its time"
        )

        # The report's numbers are the sandbox's own: every grantee received the message once.
        page.reload()
        received = sandbox_received(sandbox, template_id)
        assert received == GRANTEES
        expect(page.locator("[data-count=sent]").first).to_have_text(str(received))
        expect(page.locator("[data-count=failed]").first).to_have_text("0")
        expect(page.locator("[data-count=recipients]").first).to_have_text(str(GRANTEES))
        messages = requests.get(
            f"{sandbox}/sandbox/api/messages", params={"template_id": template_id}, timeout=5
        ).json()["messages"]
        assert sorted(m["openid"] for m in messages) == sorted(openids)
        assert widest(page) <= 1280
        shoot(page, screenshot_dir, "flow-report-zh.png")
        assert errors == []
    finally:
        context.close()

    # The same pages in English, at a phone's width.
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    try:
        log_in(page, base, embedded_server["password"])
        # The admin chose Chinese above (the choice is kept); switch through the phone menu.
        page.locator("details.navmenu summary").click()
        page.locator("button", has_text="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.goto(segment_url)
        # The campaign spent one of each user's two credits: they all still hold one.
        expect(page.locator("#segment-count")).to_have_text(str(GRANTEES))
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "flow-segment-en.png")
        page.goto(campaign_url)
        expect(page.locator("#campaign-progress .badge")).to_have_text("completed")
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "flow-report-en.png")
        page.locator("#campaign-progress").screenshot(path=str(screenshot_dir / "flow-progress-en.png"))
        # A copy to compose and dry-run again, in English.
        page.locator("form[action$='/duplicate'] button").click()
        page.wait_for_url(f"{base}/campaigns/*/edit")
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "flow-compose-en.png")
        page.goto(page.url.replace("/edit", ""))
        page.click("#action-dry-run")
        expect(page.locator("#dry-run-total")).to_have_text(str(GRANTEES))
        page.locator("#compose-actions").screenshot(path=str(screenshot_dir / "flow-dry-run-en.png"))
    finally:
        context.close()


def _started_at(server: dict, campaign_id: int) -> datetime:
    """When the worker started the campaign (SQLite hands back the stored UTC text without its zone)."""
    engine = sa.create_engine(server["database_url"])
    try:
        with engine.connect() as connection:
            value = connection.execute(
                sa.text("SELECT started_at FROM campaign WHERE id = :id"), {"id": campaign_id}
            ).scalar()
    finally:
        engine.dispose()
    started = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return started if started.tzinfo else started.replace(tzinfo=UTC)
