"""The test-send race (issue 12): WeChat is slow, the operator types while a test send is in flight.

Before the fix the send button's request shared the preview form's ``hx-sync="this:replace"`` scope, so
the preview that typing fires aborted the send in the browser: WeChat got the message, the delivery was
written, and its result never showed; a second click sent it twice. The sandbox's HOLD_SENDS fault
keeps subscribeMessage.send waiting until the test lets it go, so the typing surely happens during it.

Nothing here waits for a fixed time: each step waits for the event it needs (a response, a state).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.catalog import sync
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliverySource, WechatUser
from dashboard.models.catalog import MessageTemplate
from tests.api.live import mp_overrides

from .test_catalog import log_in


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


def test_sends(app) -> list[Delivery]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Delivery).where(Delivery.source == DeliverySource.test)))


test_sends.__test__ = False  # a helper, not a test


def test_typing_during_a_slow_test_send_neither_cancels_it_nor_sends_twice(
    app, live_server, page, personas, sandbox
):
    with app.app_context():
        sync.apply_sync(sync.plan_sync(sync.fetch_remote()))
        db.session.commit()
        template = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.title == "订单发货提醒")
        )
        template_pk, template_id = template.id, template.template_id
    openid = sandbox.openids()[0]
    sandbox.grant(openid, template_id, times=2)
    with app.app_context():  # two credits in Tongzhi's ledger too: two test sends
        user = WechatUser(openid=openid)
        db.session.add(user)
        db.session.flush()
        record_answers(user.id, [(template_id, "accept"), (template_id, "accept")], source="client")
        db.session.commit()

    log_in(page, live_server, "mark@example.com", personas["marketer"].password)
    page.console_errors.clear()  # this test is about the template page, not the home page it lands on
    page.goto(f"{live_server}/templates/{template_pk}")
    with page.expect_response(lambda response: "/preview" in response.url):
        page.fill("#openid", openid)
    expect(page.locator("#preview-form")).not_to_have_class(re.compile(r"htmx-(settling|added|request)"))

    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if "/test-send" in request.url else None)
    button = page.locator("#test-send-button")
    busy = page.locator("#test-send-busy")
    result = page.locator("#test-send-result")
    expect(busy).to_be_hidden()
    try:
        # 1. Click, then type into a keyword while WeChat holds the send.
        sandbox.faults(HOLD_SENDS=1)
        button.click()
        expect(button).to_be_disabled()
        expect(busy).to_be_visible()  # the spinner and its words
        with page.expect_response(lambda response: "/preview" in response.url) as preview:
            page.fill("#kw_character_string1", "SF20991231")
        assert preview.value.ok
        card = page.locator("#preview-card")
        expect(card.locator(".wx-row[data-keys=character_string1] .wx-value")).to_have_text("SF20991231")
        # The preview came back while the send still waits: the race the issue describes.
        expect(button).to_be_disabled()
        assert result.inner_text().strip() == ""
        sandbox.faults(HOLD_SENDS=0)

        expect(result).to_contain_text("已发送")
        expect(button).to_be_enabled()
        expect(busy).to_be_hidden()
        [first] = test_sends(app)
        assert result.locator(".msgid").inner_text() == first.msgid
        assert [str(m["msgid"]) for m in sandbox.messages()] == [first.msgid]
        # What was typed during the send is still there (the answer replaced the result alone).
        expect(page.locator("#kw_character_string1")).to_have_value("SF20991231")
        assert len(posts) == 1

        # 2. A double click sends once.
        sandbox.faults(HOLD_SENDS=1)
        button.dblclick()
        expect(button).to_be_disabled()
        sandbox.faults(HOLD_SENDS=0)
        expect(result).not_to_contain_text(first.msgid)
        expect(result).to_contain_text("已发送")
        expect(button).to_be_enabled()
    finally:
        sandbox.faults(HOLD_SENDS=0)
    sends = test_sends(app)
    assert len(sends) == 2 and len(sandbox.messages()) == 2
    assert len(posts) == 2
    assert result.locator(".msgid").inner_text() == sends[-1].msgid
    assert page.console_errors == []
