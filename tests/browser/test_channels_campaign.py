"""A campaign on ``mp_subscribe_or_oa``, as marketing runs it on `make run` (issue 15).

The real `flask serve` with its worker and the WeChat sandbox (whose linked Official Account pushes its
events to Tongzhi), driven in Chromium. Eight simulated people: three tap 允许 on the subscribe template
(each holds one credit), three follow the Official Account but grant nothing, two neither grant nor
follow. The campaign asks for the subscribe message, else the Official Account's template message: the
first three get the subscribe message (and spend their credit), the next three the Official Account's
message, the last two are skipped ``no_channel``. The report's split by channel equals what the sandbox
itself received on each channel. Screenshots in Chinese and English at a phone's width.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import requests
from playwright.sync_api import expect

from dashboard.oa.templates import example_values, parse_keys
from tests.browser.htmx import choose
from tests.browser.test_campaign_end_to_end import log_in, one_time_template, sandbox_received, shoot
from tests.browser.test_embedded import ROOT, embedded_server  # noqa: F401 - fixture
from tests.browser.test_segments import widest
from tests.sandbox_api import example_data

WITH_CREDIT, FOLLOW_ONLY, NEITHER = 3, 3, 2


class _OaTemplateLike:
    """What ``oa.templates.example_values`` reads, from the sandbox's own description of a template."""

    def __init__(self, row: dict) -> None:
        self.content, self.example = row["content"], row.get("example") or ""
        self.keywords = parse_keys(self.content)


def oa_template_and_values(sandbox: str) -> tuple[dict, dict[str, str]]:
    """An OA template whose example gives a valid value for every key (the sandbox's classic one)."""
    rows = requests.get(f"{sandbox}/sandbox/api/oa/templates", timeout=5).json()["templates"]
    for row in rows:
        values = example_values(_OaTemplateLike(row))
        if values and all(values.values()):
            return row, values
    raise AssertionError(f"no OA template with a full example: {rows}")


def people(sandbox: str) -> tuple[list[str], list[str], list[str]]:
    """Mini-program openids of three groups, all with a unionid: credit, follow only, neither."""
    followers = requests.get(f"{sandbox}/sandbox/api/oa/followers", timeout=5).json()["followers"]
    usable = [f for f in followers if f["subscribed"] and f.get("mp_openid") and f.get("unionid")]
    chosen = [f["mp_openid"] for f in usable[: WITH_CREDIT + FOLLOW_ONLY + NEITHER]]
    assert len(chosen) == WITH_CREDIT + FOLLOW_ONLY + NEITHER, followers
    return (
        chosen[:WITH_CREDIT],
        chosen[WITH_CREDIT : WITH_CREDIT + FOLLOW_ONLY],
        chosen[WITH_CREDIT + FOLLOW_ONLY :],
    )


def prompt(sandbox: str, openid: str, template_id: str, answer: str) -> None:
    """The user answers the subscribe popup in the mini-program, which logs them in to Tongzhi and
    reports the answer (the sandbox plays the mini-program's helper)."""
    answered = requests.post(
        f"{sandbox}/sandbox/api/users/{openid}/prompt", json={"templates": {template_id: answer}}, timeout=10
    )
    assert answered.status_code == 200, answered.text


def oa_received(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/sandbox/api/oa/messages", timeout=5).json()["messages"]


def test_a_campaign_on_subscribe_else_official_account_splits_its_sends_by_channel(
    embedded_server,  # noqa: F811 - the fixture imported above
    browser,
    screenshot_dir,
):
    base, sandbox = embedded_server["url"], embedded_server["sandbox"]
    template = one_time_template(sandbox)
    template_id = template["priTmplId"]
    oa_template, oa_values = oa_template_and_values(sandbox)
    with_credit, follow_only, neither = people(sandbox)
    for openid in with_credit:
        prompt(sandbox, openid, template_id, "accept")
    for openid in follow_only + neither:
        prompt(sandbox, openid, template_id, "reject")
    for openid in neither:  # they stop following (the sandbox pushes ``unsubscribe`` to Tongzhi)
        left = requests.post(f"{sandbox}/sandbox/api/oa/users/{openid}/unfollow", timeout=5)
        assert left.status_code == 200, left.text
    # The followers with their unionids, as the worker's daily sync would bring them. The worker may be
    # running its start-up catch-up sync: the command then says so, and is run again once that ends.
    for _ in range(120):
        synced = subprocess.run(
            [sys.executable, "-m", "flask", "sync-followers"],
            cwd=ROOT,
            env={**embedded_server["env"], "WECHAT_API_BASE": sandbox},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if "already running" not in synced.stderr:
            break
        time.sleep(0.5)
    assert synced.returncode == 0, synced.stdout + synced.stderr

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, base, embedded_server["password"])
        page.goto(f"{base}/templates/sync")
        page.click("form.row-form button.primary")
        page.goto(f"{base}/templates/official-account")
        page.locator("form[action$='/sync'] button").first.click()
        expect(page.locator("main")).to_contain_text(oa_template["title"])

        page.goto(f"{base}/segments/new")
        page.fill("textarea[name=filter]", json.dumps({"openids": with_credit + follow_only + neither}))
        expect(page.locator("#segment-count")).to_have_text(str(len(with_credit + follow_only + neither)))
        page.fill("input[name=name]", "渠道测试用户")
        page.click("button[value=save]")
        page.wait_for_url(re.compile(r".*/segments/\d+$"))

        page.goto(f"{base}/campaigns/new")
        page.check("input[name=channel][value=mp_subscribe_or_oa]")
        choose(page, "select[name=template_id]", template_id, "/compose/keywords")
        page.fill("input[name=name]", "订单提醒（订阅消息，否则公众号）")
        page.select_option("select[name=segment_id]", label="渠道测试用户")
        for key, value in example_data(template).items():
            page.select_option(f"select[name=source-{key}]", "text")
            page.fill(f"input[name=value-{key}]", value)
        choose(page, "select[name=oa_template_id]", oa_template["template_id"], "/compose/oa-keywords")
        for key, value in oa_values.items():
            page.select_option(f"select[name=oa-source-{key}]", "text")
            page.fill(f"input[name=oa-value-{key}]", value)
        # The preview follows the form: reach per channel for the chosen template and segment, and both
        # cards filled with the values a launch would send.
        preview = page.locator("#compose-preview")
        expect(preview.locator("[data-count=reach-mp_subscribe]")).to_have_text(
            str(WITH_CREDIT), timeout=15_000
        )
        expect(preview.locator("[data-count=reach-oa_template]")).to_have_text(str(WITH_CREDIT + FOLLOW_ONLY))
        expect(preview.locator("[data-count=reach-mp_subscribe_or_oa]")).to_have_text(
            str(WITH_CREDIT + FOLLOW_ONLY)
        )
        expect(page.locator("#compose-preview-card")).to_contain_text(
            next(iter(example_data(template).values()))
        )
        expect(page.locator("#oa-preview-card")).to_contain_text(oa_values["keyword1"])
        shoot(page, screenshot_dir, "channels-compose-zh.png")
        page.click("#save-campaign")
        page.wait_for_url(f"{base}/campaigns/*")
        campaign_url = page.url.split("?")[0]

        launch = page.locator("form[action$='/launch']")
        launch.locator("input[name=confirm]").check()
        launch.locator("button[type=submit]").click()
        expect(page.locator("#campaign-progress .badge")).to_have_text("已完成", timeout=120_000)

        page.reload()
        mp_count = sandbox_received(sandbox, template_id)
        oa_messages = oa_received(sandbox)
        assert mp_count == WITH_CREDIT
        assert len(oa_messages) == FOLLOW_ONLY
        expect(page.locator("[data-count=sent-mp_subscribe]").first).to_have_text(str(mp_count))
        expect(page.locator("[data-count=sent-oa_template]").first).to_have_text(str(len(oa_messages)))
        expect(page.locator("[data-count=sent]").first).to_have_text(str(WITH_CREDIT + FOLLOW_ONLY))
        expect(page.locator("main")).to_contain_text("没有可发送次数，也未关注公众号")  # no_channel, in words
        assert widest(page) <= 1280
        shoot(page, screenshot_dir, "channels-report-zh.png")
        assert errors == []
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    try:
        log_in(page, base, embedded_server["password"])
        page.locator("details.navmenu summary").click()
        page.locator("button", has_text="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.goto(campaign_url)
        expect(page.locator("#campaign-progress .badge")).to_have_text("completed")
        expect(page.locator("#sent-by-channel")).to_contain_text("Official Account")
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "channels-report-en.png")
        # A message the Official Account carried: its page says so and shows the card its follower got.
        page.locator("#campaign-log-table tr", has_text=follow_only[0]).locator("a").first.click()
        page.wait_for_url(re.compile(r".*/deliveries/\d+$"))
        expect(page.locator(".delivery-channel")).to_contain_text("Official Account template message")
        expect(page.locator("#delivery-oa-card")).to_contain_text(oa_values["keyword1"])
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "channels-delivery-en.png")
        # Composing on a phone, in English, with the Official Account's part showing: a campaign, and
        # the date reminder's template choice (its form proper needs a date attribute declared first).
        page.goto(f"{base}/campaigns/new")
        page.check("input[name=channel][value=mp_subscribe_or_oa]")
        page.select_option("select[name=oa_template_id]", oa_template["template_id"])
        expect(page.locator("#oa-keyword-fields")).to_contain_text("keyword1")
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "channels-compose-en.png")
        page.goto(f"{base}/campaigns/reminders/new")
        page.select_option("#choose-oa-template", oa_template["template_id"])
        assert widest(page) <= 390
        shoot(page, screenshot_dir, "channels-reminder-en.png")
    finally:
        context.close()
