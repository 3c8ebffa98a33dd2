"""The pages the Official Account channel added, in a real browser: a delivery's page (one carried by the
Official Account, one sent as a subscribe message, and ones skipped for want of a channel), a segment's
reach per channel, and the top navigation in English between 900 and 1080 px.

Each page, in Chinese and English, at a phone's width (390 px) and a desktop's (1440 px): the document does
not scroll sideways, no channel or reason code (``oa_template``, ``not_following``...) reaches the reader
as a code, and in Chinese the labels are Chinese. The deliveries are real: the engine sends them to the
WeChat sandbox, whose linked Official Account has followers. What was wrong when these were first looked
at, kept right here: the Official Account's card on a delivery was dated now (not when it was sent), had
no caption and ended with the editor's "every value fits" line; the segment's reach table, on a phone,
left its rows short of its border; and at 900 and 960 px the English navigation hid "Settings" and
cut "Deliveries" in a scroll box. Screenshots ``channels-delivery-*.png``,
``channels-segment-reach-*.png`` and ``nav-en-*.png`` go to $TONGZHI_SCREENSHOTS (docs/screenshots).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.extensions import db
from dashboard.models import Channel, Delivery, DeliverySource, Operator, Segment, WechatUser
from dashboard.oa.followers import sync_followers
from dashboard.oa.templates import sync_oa_templates
from dashboard.wechat.oa import get_oa_client
from tests.browser.test_oa_channels import log_in
from tests.browser.test_phone import OVERFLOW
from tests.dispatch.helpers import grant, register
from tests.oa.helpers import SHIPPED_VALUES as OA_VALUES
from tests.oa.helpers import oa_get, oa_post
from tests.sandbox_api import example_data

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 900}
NAV_WIDTHS = (900, 960, 1024, 1080)
PAGE = "pages/index/index"
SENT_AT = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # noon in Shanghai
# What a reader must never see as such: the channels' and the skip reasons' codes.
CODES = ("mp_subscribe_or_oa", "mp_subscribe", "oa_template", "not_following", "no_channel", "no_oa_template")
CODE_PATTERN = re.compile(r"\b(" + "|".join(CODES) + r")\b")
# In Chinese, every label (table headings, captions, headings) has Chinese in it but these.
NOT_TRANSLATED = {"msgid", "#"}
CJK = re.compile(r"[\u4e00-\u9fff]")
# What each delivery's page says, in Chinese and in English (the channel and the reason in words).
SAYS = {
    "oa": {
        "zh": ("公众号模板消息", "公众号模板", "粉丝", "用户看到的消息"),
        "en": ("Official Account template message", "Follower", "The message as the user sees it"),
    },
    "mp": {"zh": ("订阅消息（小程序）", "用户看到的消息"), "en": ("Subscribe message (mini-program)",)},
    "not-following": {"zh": ("未关注公众号",), "en": ("Does not follow the Official Account",)},
    "no-channel": {  # both messages it would have sent, the Official Account's captioned as the fallback
        "zh": ("没有可发送次数，也未关注公众号", "订阅消息，否则公众号", "否则通过公众号发给粉丝"),
        "en": (
            "No credit, and does not follow the Official Account",
            "Else, to a follower, through the Official Account",
        ),
    },
    "no-oa-template": {"zh": ("未指定公众号模板",), "en": ("No Official Account template given",)},
}
SHOOT = {("oa", "390"), ("oa", "1440"), ("mp", "390"), ("mp", "1440"), ("no-channel", "390")}


@pytest.fixture
def config_overrides(sandbox):
    config = sandbox.server.state.config
    return {
        "WECHAT_APPID": sandbox.appid,
        "WECHAT_SECRET": sandbox.secret,
        "WECHAT_API_BASE": sandbox.url,
        "WECHAT_OA_APPID": config["OA_APPID"],
        "WECHAT_OA_SECRET": config["OA_SECRET"],
        "SANDBOX_MODE": True,  # the banner is part of every page's top
    }


def oa_template_id(sandbox) -> str:
    return next(
        t["template_id"] for t in oa_get(sandbox, "/templates")["templates"] if t["title"] == "订单发货通知"
    )


@pytest.fixture
def world(app, sandbox, personas):
    """Five mini-program users (with unionids; the Official Account's followers synced): ``credit`` holds
    a credit and follows, ``follows`` only follows, ``neither`` does neither, and the engine has sent or
    skipped one delivery per case. Returns the deliveries' ids by case and the segment's id."""
    template = sandbox.templates(2)[0]
    oa_template = oa_template_id(sandbox)
    users = [u for u in sandbox.get("/users", per_page=500)["users"] if u["unionid"]][:3]
    credit, follows, neither = (user["openid"] for user in users)
    for openid, follow in ((credit, True), (follows, True), (neither, False)):
        oa_post(sandbox, f"/users/{openid}/{'follow' if follow else 'unfollow'}")
    for _ in range(2):  # two credits: the subscribe message spends one, the segment's reach counts the other
        sandbox.grant(credit, template["priTmplId"])
    with app.app_context():
        register(template)
        ids = {}
        for user in users:
            row = WechatUser(openid=user["openid"], unionid=user["unionid"], nickname="王伟")
            db.session.add(row)
            db.session.flush()
            ids[user["openid"]] = row.id
        grant(ids[credit], template["priTmplId"], times=2)
        db.session.commit()
        sync_followers(get_oa_client())
        sync_oa_templates(get_oa_client())
        cases = {
            "oa": (follows, Channel.oa_template, oa_template),
            "mp": (credit, Channel.mp_subscribe, None),
            "not-following": (neither, Channel.oa_template, oa_template),
            "no-channel": (neither, Channel.mp_subscribe_or_oa, oa_template),
            "no-oa-template": (follows, Channel.mp_subscribe_or_oa, None),
        }
        deliveries = {}
        for case, (openid, channel, oa) in cases.items():
            delivery = Delivery(
                source=DeliverySource.api,
                openid=openid,
                user_id=ids[openid],
                template_id=template["priTmplId"],
                data=example_data(template),
                page=PAGE,
                channel=channel.value,
                oa_template_id=oa,
                oa_data=dict(OA_VALUES) if oa else None,
            )
            db.session.add(delivery)
            db.session.flush()
            deliveries[case] = delivery.id
        segment = Segment(name="渠道触达测试用户", filter={"openids": [credit, follows, neither]})
        db.session.add(segment)
        db.session.commit()
        segment_id = segment.id
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=4, lease_seconds=60)
    try:
        dispatcher.drain(10)
    finally:
        dispatcher.close()
    with app.app_context():
        found = {row.id: row for row in db.session.scalars(sa.select(Delivery))}
        outcomes = {
            case: (found[i].state.value, found[i].channel_used, found[i].reason)
            for case, i in deliveries.items()
        }
    assert outcomes == {
        "oa": ("sent", "oa_template", ""),
        "mp": ("sent", "mp_subscribe", ""),
        "not-following": ("skipped", None, "not_following"),
        "no-channel": ("skipped", None, "no_channel"),
        "no-oa-template": ("skipped", None, "no_oa_template"),
    }, outcomes
    with app.app_context():  # sent on another day than today: the card shows the day it was sent
        sent = db.session.get(Delivery, deliveries["oa"])
        sent.created_at, sent.sent_at = SENT_AT - timedelta(minutes=1), SENT_AT
        db.session.commit()
    return {
        "deliveries": deliveries,
        "segment": segment_id,
        "template": template["priTmplId"],
        "sent_on": {"zh": "3月5日", "en": "Mar 5"},
    }


def use_language(app, email: str, code: str) -> None:
    """The operator's own language (the switch in the top bar stores it the same way)."""
    with app.app_context():
        db.session.scalar(sa.select(Operator).where(Operator.email == email)).locale = code
        db.session.commit()


# What a reader sees: the body's text, and the titles and choices that show on hover or in a list.
VISIBLE_TEXT = """() => document.body.innerText + "\\n" + [...document.querySelectorAll("[title], option")]
  .map(e => (e.getAttribute("title") || "") + " " + (e.tagName === "OPTION" ? e.textContent : "")).join("\\n")"""
# The page's labels: table headings, captions, headings and the stacked rows' labels.
LABELS = """() => [...document.querySelectorAll("main th, main caption, main h1, main h2, main h3, main figcaption, main label")]
  .map(e => e.innerText.trim()).concat([...document.querySelectorAll("main td[data-label]")]
  .map(e => e.dataset.label.trim())).filter(Boolean)"""


def check_page(page, width: int, lang: str) -> str:
    """No sideways scrolling, no code shown, and in Chinese no label left in English. Returns the text."""
    overflow = page.evaluate(OVERFLOW)
    assert overflow["scrollWidth"] <= width, overflow
    text = page.evaluate(VISIBLE_TEXT)
    codes = sorted(set(CODE_PATTERN.findall(text)))
    assert codes == [], f"codes shown to the reader on {page.url}: {codes}"
    if lang == "zh":
        english = [
            label for label in page.evaluate(LABELS) if label not in NOT_TRANSLATED and not CJK.search(label)
        ]
        assert english == [], f"labels not in Chinese on {page.url}: {english}"
    return text


def test_delivery_and_segment_reach_pages_in_both_languages_on_a_phone_and_a_desktop(
    app, browser, live_server, personas, world, screenshot_dir
):
    email = personas["admin"].email
    for lang in ("zh", "en"):
        use_language(app, email, lang)
        for name, viewport in (("390", PHONE), ("1440", WIDE)):
            context = browser.new_context(viewport=viewport, locale="zh-CN" if lang == "zh" else "en-US")
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
            try:
                log_in(page, live_server, email)
                for case, delivery_id in world["deliveries"].items():
                    page.goto(f"{live_server}/deliveries/{delivery_id}")
                    text = check_page(page, viewport["width"], lang)
                    for words in SAYS[case][lang]:
                        assert words in text, (case, lang, words)
                    if case == "oa":  # the Official Account's card, dated when it was sent
                        card = page.locator("#delivery-oa-card")
                        assert OA_VALUES["keyword1"] in card.inner_text()
                        assert card.locator(".oa-card-date").inner_text() == world["sent_on"][lang]
                        assert page.locator(".delivery-detail .wx-summary").count() == 0  # the editor's line
                    if case == "no-channel":
                        assert OA_VALUES["keyword1"] in page.locator("#delivery-oa-card").inner_text()
                        assert page.locator("#delivery-card").count() == 1  # and the subscribe message
                    if (case, name) in SHOOT:
                        shot = f"channels-delivery-{case}-{lang}-{name}.png"
                        page.screenshot(path=str(screenshot_dir / shot), full_page=True)
                page.goto(f"{live_server}/segments/{world['segment']}?template_id={world['template']}")
                text = check_page(page, viewport["width"], lang)
                reach = page.locator("#segment-channel-reach")
                for channel, count in (("mp_subscribe", 1), ("oa_template", 2), ("mp_subscribe_or_oa", 2)):
                    assert reach.locator(f"li[data-channel={channel}] strong").inner_text() == str(count)
                assert ("各渠道可触达" if lang == "zh" else "Reach per channel") in text
                # The reach table's rows fill its box (a phone's wide-table rule left them short of it).
                table = page.locator("#segment-reach").bounding_box()
                row = page.locator("#segment-reach tbody tr").first.bounding_box()
                assert row["width"] >= table["width"] - 2, (table, row)
                if name == "390":
                    shot = f"channels-segment-reach-{lang}-{name}.png"
                    page.screenshot(path=str(screenshot_dir / shot), full_page=True)
                assert errors == []
            finally:
                context.close()


# The top bar's parts, in order: the brand, each navigation link, each item of the account's toolbar.
TOPBAR = """() => {
  const nav = document.querySelector("nav.mainnav");
  const parts = [document.querySelector(".topbar .brand"),
    ...document.querySelectorAll("nav.mainnav > a, nav.mainnav > span, .navmenu-panel .toolbar > *")];
  const boxes = parts.map(e => {
    const b = e.getBoundingClientRect();
    return {name: e.textContent.trim(), account: e.classList.contains("account"), title: e.title,
            left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width,
            cut: e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== "inline"};
  });
  return {navScroll: nav.scrollWidth, navClient: nav.clientWidth, boxes,
          width: document.documentElement.clientWidth};
}"""


def topbar_problems(found: dict) -> list[str]:
    """Every link whole and in the window, nothing on top of its neighbour; only the email may be cut
    (with an ellipsis, its full text in its title), and it keeps a few letters."""
    problems = []
    if found["navScroll"] > found["navClient"] + 1:
        problems.append(f"navigation cut off: {found['navScroll']} px of links in {found['navClient']} px")
    boxes = found["boxes"]
    for box in boxes:
        if box["left"] < 0 or box["right"] > found["width"] + 0.5:
            problems.append(f"{box['name']!r} outside the window: {box['left']:.0f}-{box['right']:.0f}")
        if box["account"]:
            if box["width"] < 36 or box["name"] not in box["title"]:
                problems.append(f"the email is hidden: {box}")
        elif box["cut"]:
            problems.append(f"{box['name']!r} cut off inside its box")
    for first, second in zip(boxes, boxes[1:], strict=False):
        same_line = first["top"] < second["bottom"] and second["top"] < first["bottom"]
        if same_line and second["left"] < first["right"] - 0.5:
            problems.append(f"{first['name']!r} and {second['name']!r} overlap")
    return problems


@pytest.mark.parametrize("email", ["alice@example.com", "marketing.operations.lead@example.com"])
def test_the_english_top_bar_fits_from_900_to_1080_px(
    app, browser, live_server, personas, screenshot_dir, email
):
    with app.app_context():
        admin = db.session.get(Operator, personas["admin"].id)
        admin.email, admin.locale = email, "en"
        db.session.commit()
    for width in NAV_WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 700}, locale="en-US")
        page = context.new_page()
        try:
            log_in(page, live_server, email)
            page.goto(f"{live_server}/deliveries/")
            found = page.evaluate(TOPBAR)
            if email == "alice@example.com":
                page.screenshot(
                    path=str(screenshot_dir / f"nav-en-{width}.png"),
                    clip={"x": 0, "y": 0, "width": width, "height": 120},
                )
            assert topbar_problems(found) == [], (width, found)
            assert [box["name"] for box in found["boxes"][1:8]] == [
                "Home",
                "Templates",
                "Users",
                "Segments",
                "Campaigns",
                "Deliveries",
                "Settings",
            ]
            check_page(page, width, "en")
        finally:
            context.close()
