"""The home page in a real browser, in Chinese and English, at 1280 and 390 px: its figures equal what the
database holds, the connection check loads after the page, and nothing spills sideways on a phone.

Writes the screenshots docs/screenshots/home.png (zh) and home-en.png (en).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.catalog import sync
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser, utcnow
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.catalog import MessageTemplate
from dashboard.models.grants import ACCEPT_STATUSES, GrantBalance, GrantEvent
from tests.api.live import mp_overrides

ZONE = ZoneInfo("Asia/Shanghai")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# How far anything inside <main> reaches past the screen's right edge (0 when nothing does); children of
# a box that scrolls by itself (a wide table in its own scroller) do not count.
MAIN_SPILL = """() => {
  const width = document.documentElement.clientWidth;
  let worst = 0, name = "";
  for (const element of document.querySelectorAll("main, main *")) {
    const box = element.getBoundingClientRect();
    if (box.width === 0) continue;
    let inside = false;
    for (let up = element.parentElement; up && up.tagName !== "MAIN"; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { inside = true; break; }
    }
    if (inside) continue;
    if (box.right - width > worst) { worst = box.right - width; name = element.tagName + "." + element.className; }
  }
  return {worst: Math.round(worst), name};
}"""


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    today = datetime.now(ZONE).date()
    return datetime.combine(today - timedelta(days=days_ago), time(hour, minute), tzinfo=ZONE).astimezone(UTC)


def seed(app) -> dict:
    """Two weeks of a small shop's console: templates from the sandbox, grants, today's sends, campaigns."""
    with app.app_context():
        sync.apply_sync(sync.plan_sync(sync.fetch_remote()))
        db.session.flush()
        templates = db.session.scalars(sa.select(MessageTemplate).order_by(MessageTemplate.id).limit(2)).all()
        first, second = templates[0].template_id, templates[1].template_id
        users = [WechatUser(openid=f"o-home-{n:03d}", nickname=f"用户{n}") for n in range(30)]
        db.session.add_all(users)
        db.session.flush()
        for n, user in enumerate(users):
            db.session.add(GrantBalance(user_id=user.id, template_id=first, credits=1 + n % 3))
            if n % 3 == 0:
                db.session.add(GrantBalance(user_id=user.id, template_id=second, credits=1))
        for days_ago in range(14):
            for n in range(3 + (days_ago * 7) % 9):
                status = ("accept", "accept", "reject", "acceptWithAlert", "ban")[(n + days_ago) % 5]
                db.session.add(
                    GrantEvent(
                        user_id=users[n].id,
                        template_id=first,
                        kind="one_time",
                        source="client",
                        status=status,
                        occurred_at=local(days_ago, 9 + n % 12, 15),
                    )
                )
        # Late last night and early this morning, local time: only the second is today's.
        db.session.add(
            GrantEvent(
                user_id=users[0].id,
                template_id=first,
                kind="one_time",
                source="client",
                status="accept",
                occurred_at=local(1, 23, 30),
            )
        )
        db.session.add(
            GrantEvent(
                user_id=users[1].id,
                template_id=first,
                kind="one_time",
                source="client",
                status="reject",
                occurred_at=local(0, 0, 30),
            )
        )

        running = Campaign(
            name="双十二会员日预告",
            template_id=first,
            state=CampaignState.running,
            recipients=20,
            started_at=utcnow() - timedelta(minutes=20),
        )
        scheduled = Campaign(
            name="年终账单提醒",
            template_id=second,
            state=CampaignState.scheduled,
            scheduled_at=local(-1, 10, 0),
        )
        last = Campaign(
            name="周末到货通知",
            template_id=first,
            state=CampaignState.completed,
            recipients=12,
            started_at=local(2, 10),
            finished_at=local(2, 10, 20),
        )
        db.session.add_all([running, scheduled, last])
        db.session.flush()

        def delivery(at, state, errcode=None, reason="", **more):
            db.session.add(
                Delivery(
                    source=more.pop("source", DeliverySource.api),
                    openid=more.pop("openid", users[0].openid),
                    template_id=more.pop("template_id", first),
                    state=state,
                    errcode=errcode,
                    reason=reason,
                    created_at=at,
                    **more,
                )
            )

        outcomes = [DeliveryState.sent] * 12 + [DeliveryState.failed] * 2 + [DeliveryState.pending] * 6
        for n, state in enumerate(outcomes):
            delivery(
                local(0, 0, 30),
                state,
                47003 if state == DeliveryState.failed else None,
                "content" if state == DeliveryState.failed else "",
                source=DeliverySource.campaign,
                campaign_id=running.id,
                openid=users[n].openid,
            )
        outcomes = [DeliveryState.sent] * 9 + [
            DeliveryState.failed,
            DeliveryState.skipped,
            DeliveryState.skipped,
        ]
        for n, state in enumerate(outcomes):
            delivery(
                local(2, 10, 5),
                state,
                43101 if state == DeliveryState.failed else None,
                "no_grant" if state == DeliveryState.failed else "no_credit",
                source=DeliverySource.campaign,
                campaign_id=last.id,
                openid=users[n].openid,
                opened_at=local(2, 11) if n < 4 else None,
            )
        delivery(local(1, 23, 30), DeliveryState.sent)  # yesterday, 23:30 local
        for _ in range(5):
            delivery(local(0, 8, 10), DeliveryState.sent)
        delivery(local(0, 8, 12), DeliveryState.failed, 43101, "no_grant")
        delivery(local(0, 8, 12), DeliveryState.failed, 40003, "recipient")
        delivery(local(0, 8, 15), DeliveryState.unknown, None, "lease_expired")
        db.session.commit()
        return {"running": running.id, "scheduled": scheduled.id, "last": last.id}


def expected_figures(app) -> dict:
    """The same figures, counted in Python from the rows themselves."""
    with app.app_context():
        today = datetime.now(ZONE).date()
        rows = [
            d
            for d in db.session.scalars(sa.select(Delivery))
            if d.created_at.astimezone(ZONE).date() == today
        ]
        states = {s: sum(d.state == s for d in rows) for s in DeliveryState}
        answers = [
            e
            for e in db.session.scalars(sa.select(GrantEvent))
            if e.occurred_at.astimezone(ZONE).date() == today
        ]
        accepts = sum(e.status in ACCEPT_STATUSES for e in answers)
        rejects = sum(e.status == "reject" for e in answers)
    return {
        "sent": states[DeliveryState.sent],
        "failed": states[DeliveryState.failed],
        "unknown": states[DeliveryState.unknown],
        "pending": states[DeliveryState.pending]
        + states[DeliveryState.sending]
        + states[DeliveryState.retry_wait],
        "rate": round(
            100
            * states[DeliveryState.sent]
            / (states[DeliveryState.sent] + states[DeliveryState.failed] + states[DeliveryState.unknown])
        ),
        "today": today.isoformat(),
        "accepts": accepts,
        "rejects": rejects,
    }


def log_in(page, live_server, email, password):
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def check_figures(page, want: dict) -> None:
    tile = page.locator("#tile-sends-today")
    for state in ("sent", "failed", "unknown", "pending"):
        assert tile.locator(f'[data-state="{state}"]').inner_text() == str(want[state]), state
    assert tile.locator(".figure").inner_text() == f"{want['rate']}%"
    today = page.locator(f'#grant-days g.day[data-day="{want["today"]}"]')
    assert today.get_attribute("data-accepts") == str(want["accepts"])
    assert today.get_attribute("data-rejects") == str(want["rejects"])


def check_phone(page) -> None:
    page.set_viewport_size(PHONE)
    page.reload()
    spill = page.evaluate(MAIN_SPILL)
    assert spill["worst"] <= 0, spill
    chart = page.locator("#grant-days svg").bounding_box()
    assert chart["width"] >= 300  # the chart takes the screen's width...
    tick = page.locator("#grant-days text.tick").first.bounding_box()
    assert tick["height"] >= 9  # ...and its day numbers stay readable
    page.set_viewport_size(DESKTOP)


def test_the_home_page_shows_the_databases_figures_in_both_languages_on_desktop_and_phone(
    app, live_server, page, personas, sandbox, screenshot_dir
):
    ids = seed(app)
    want = expected_figures(app)
    log_in(page, live_server, "alice@example.com", personas["admin"].password)

    check_figures(page, want)
    # What needs a person: the unknown outcome, linked; the WeChat check passes, so it adds no box.
    alerts = page.locator("#home-alerts")
    expect(alerts.locator("a[href='/deliveries/?state=unknown']")).to_contain_text("1 条投递结果未知")
    expect(page.locator("#home-wechat-check")).to_be_hidden()  # swapped in by htmx: the check's answer
    assert sandbox.stable_fetches() == 1
    failures = page.locator("#tile-sends-today .failures")
    expect(failures.locator("a[href^='/deliveries/?state=failed&errcode=43101&day=']")).to_contain_text(
        "用户无订阅授权"
    )
    expect(failures).to_contain_text("接收人无效")
    campaigns = page.locator("#tile-campaigns")
    expect(campaigns.locator(f"a[href='/campaigns/{ids['running']}']")).to_have_text("双十二会员日预告")
    expect(campaigns).to_contain_text("已完成 14 / 20")
    expect(campaigns.locator(f'.campaign-scheduled[data-campaign="{ids["scheduled"]}"]')).to_contain_text(
        "10:00"
    )
    last = {
        k: campaigns.locator(f'[data-count="{k}"]').inner_text()
        for k in ("sent", "failed", "skipped", "opens")
    }
    assert last == {"sent": "9", "failed": "1", "skipped": "2", "opens": "4"}
    titles = page.locator("#tile-live-grants .per-template .title").all_inner_texts()
    assert len(titles) == 2 and all(titles)  # template titles, not IDs
    page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)
    check_phone(page)

    page.click("text=English")
    page.wait_for_selector("nav.mainnav >> text=Home")
    check_figures(page, want)
    main = page.locator("main")
    for words in (
        "Sends today",
        "Failures by cause",
        "No subscription credit",
        "Running and next campaigns",
        "Grants per day, last 14 days",
        "Needs a person",
    ):
        expect(main).to_contain_text(words)
    page.locator("#grant-days details summary").click()
    expect(page.locator(f'#grant-days tr[data-day="{want["today"]}"]')).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "home-en.png"), full_page=True)
    check_phone(page)
    assert page.console_errors == []
