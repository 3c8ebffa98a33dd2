"""The Deliveries pages in a real browser: the list refreshes itself while a send is in progress and stops
once every row is final (driven by the database, as the engine would change it), the copy button copies
the whole openid, the summary chips filter, errmsg shows as a tooltip, nothing spills sideways at 390 px,
and a delivery's page draws its card.

Writes the screenshots deliveries-zh.png, deliveries-en.png, delivery-card-zh.png, delivery-card-en.png.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.deliveries import views
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, Operator, utcnow
from tests.browser.test_home import MAIN_SPILL, log_in
from tests.deliveries.helpers import OPENID, add_delivery, add_template, add_user

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(views, "POLL_SECONDS", 1)


def seed(app) -> dict:
    with app.app_context():
        add_template()
        add_template("Xq3Refund_done_00000000000000000000000000b", "退款成功通知")
        user_id = add_user()
        other = add_user("oGx71Lq0ZpX2vN8mR4tY6uI9oP3a", "小红")
        now = utcnow()
        ids = {
            "sent": add_delivery(
                DeliveryState.sent,
                user_id=user_id,
                errcode=0,
                errmsg="ok",
                source=DeliverySource.campaign,
                created_at=now - timedelta(minutes=30),
            ),
            "failed": add_delivery(
                DeliveryState.failed,
                user_id=other,
                openid="oGx71Lq0ZpX2vN8mR4tY6uI9oP3a",
                reason="content",
                errcode=47003,
                errmsg="argument invalid! data.thing2.value exceeds limit rid: 674e3b2a-1f0c",
                created_at=now - timedelta(minutes=20),
            ),
            "skipped": add_delivery(
                DeliveryState.skipped,
                user_id=other,
                reason="budget",
                openid="oGx71Lq0ZpX2vN8mR4tY6uI9oP3a",
                created_at=now - timedelta(minutes=15),
            ),
            "unknown": add_delivery(
                DeliveryState.unknown,
                user_id=user_id,
                reason="lease_expired",
                created_at=now - timedelta(minutes=10),
            ),
            "sending": add_delivery(
                DeliveryState.sending,
                user_id=user_id,
                source=DeliverySource.test,
                template_id="Xq3Refund_done_00000000000000000000000000b",
                data={"character_string1": "R20261202", "thing2": "退款已到账", "phrase3": "已退款"},
            ),
        }
        db.session.commit()
    return {"user": user_id, **ids}


def finish(app, delivery_id: int) -> None:
    """The engine's answer arrives: the row becomes sent."""
    with app.app_context():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(state=DeliveryState.sent, errcode=0, errmsg="ok", msgid="3109238475", sent_at=utcnow())
        )
        db.session.commit()


def polls_counter(page) -> list[str]:
    seen: list[str] = []
    page.on(
        "request", lambda request: seen.append(request.url) if request.headers.get("hx-request") else None
    )
    return seen


def test_the_list_refreshes_until_rows_are_final_copies_openids_and_filters_by_chip(
    app, live_server, page, personas, screenshot_dir
):
    ids = seed(app)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    log_in(page, live_server, "alice@example.com", personas["admin"].password)
    polls = polls_counter(page)
    page.goto(f"{live_server}/deliveries/")
    table = page.locator("#deliveries-table")
    expect(table).to_have_attribute("data-polling", "on")
    row = page.locator(f'tr[data-delivery="{ids["sending"]}"]')
    expect(row).to_have_attribute("data-state", "sending")
    # Titles, short openids, words, the errmsg as a tooltip.
    expect(page.locator(f'tr[data-delivery="{ids["failed"]}"] .template-cell')).to_have_text("订单发货提醒")
    expect(row.locator(".template-cell")).to_have_text("退款成功通知")
    expect(page.locator(f'tr[data-delivery="{ids["sent"]}"] code.openid')).to_have_text("oMwr9O…_du0")
    failed_outcome = page.locator(f'tr[data-delivery="{ids["failed"]}"] .outcome')
    expect(failed_outcome).to_have_text("内容不合规 (47003)")
    expect(failed_outcome).to_have_attribute(
        "title", "argument invalid! data.thing2.value exceeds limit rid: 674e3b2a-1f0c"
    )
    page.wait_for_function("() => document.querySelectorAll('#deliveries-table').length === 1")
    page.screenshot(path=str(screenshot_dir / "deliveries-zh.png"), full_page=True)

    # The engine finishes the send: the next poll shows it sent and carries no trigger any more.
    with page.expect_request(lambda request: bool(request.headers.get("hx-request"))):
        pass  # it polls while the row is sending
    expect(row).to_have_attribute("data-state", "sending")
    finish(app, ids["sending"])
    expect(row).to_have_attribute("data-state", "sent", timeout=10_000)
    expect(page.locator("#deliveries-table[data-polling]")).to_have_count(0)
    assert polls, "the list never polled"
    settled = len(polls)
    page.wait_for_timeout(2500)  # more than two poll intervals: nothing asks again
    assert len(polls) == settled

    # The copy button copies the whole openid (the row shows it shortened).
    button = page.locator(f'tr[data-delivery="{ids["sent"]}"] button.copy-button')
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("已复制")
    assert page.evaluate("navigator.clipboard.readText()") == OPENID

    # The chips filter the list.
    page.locator(".chip-failed").click()
    page.wait_for_url("**/deliveries/?state=failed")
    expect(page.locator("tr[data-delivery]")).to_have_count(1)
    expect(page.locator(".chip-failed")).to_have_attribute("aria-current", "true")
    page.locator(".chip-all").click()
    expect(page.locator("tr[data-delivery]")).to_have_count(5)

    # At 390 px nothing spills sideways, on the list and on a delivery's page.
    page.set_viewport_size(PHONE)
    for url in ("/deliveries/", f"/deliveries/{ids['failed']}", f"/deliveries/{ids['unknown']}"):
        page.goto(f"{live_server}{url}")
        spill = page.evaluate(MAIN_SPILL)
        assert spill["worst"] <= 0, (url, spill)
    page.set_viewport_size(DESKTOP)

    # In English too.
    with app.app_context():
        db.session.get(Operator, personas["admin"].id).locale = "en"
        db.session.commit()
    page.goto(f"{live_server}/deliveries/")
    expect(page.locator(f'tr[data-delivery="{ids["failed"]}"] .outcome')).to_have_text(
        "Content breaks the rules (47003)"
    )
    page.screenshot(path=str(screenshot_dir / "deliveries-en.png"), full_page=True)
    page.goto(f"{live_server}/deliveries/{ids['sending']}")
    expect(page.locator("#delivery-card .wx-card-title")).to_have_text("退款成功通知")
    page.screenshot(path=str(screenshot_dir / "delivery-card-en.png"), full_page=True)
    assert page.console_errors == []


def test_a_deliverys_page_draws_its_card_and_refreshes_until_it_is_final(
    app, live_server, page, personas, screenshot_dir
):
    ids = seed(app)
    log_in(page, live_server, "alice@example.com", personas["admin"].password)
    polls = polls_counter(page)
    page.goto(f"{live_server}/deliveries/{ids['sending']}")
    section = page.locator(f"#delivery-{ids['sending']}")
    expect(section).to_have_attribute("data-polling", "on")
    card = page.locator("#delivery-card")
    expect(card.locator(".wx-card-title")).to_have_text("退款成功通知")
    expect(card.locator(".wx-row").nth(1)).to_contain_text("商品名称")
    expect(card.locator(".wx-row").nth(1)).to_contain_text("退款已到账")
    finish(app, ids["sending"])
    expect(section.locator("h1 .badge")).to_have_class("badge state-sent", timeout=10_000)
    expect(page.locator("[data-polling]")).to_have_count(0)
    settled = len(polls)
    assert settled >= 1
    page.wait_for_timeout(2500)
    assert len(polls) == settled
    page.screenshot(path=str(screenshot_dir / "delivery-card-zh.png"), full_page=True)
    assert page.console_errors == []
