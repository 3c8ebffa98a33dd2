"""A test send spends credits like any other send: reserved before WeChat is called, settled by its answer.

Two ledgers are in play: the sandbox's (what WeChat would say) and ours (``grant_balance`` and its events).
Each test sets both, sends one test message through the page or ``send_now``, and reads both afterwards.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.deliveries.services import create_delivery, send_now
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliveryAttempt, DeliverySource, DeliveryState, WechatUser
from tests.dispatch.helpers import balance, ledger_statuses
from tests.sandbox_api import example_data

HTMX = {"HX-Request": "true"}
TOO_LONG = "云南小粒咖啡豆精品礼盒装五百克两袋加赠手冲"  # 21 characters: WeChat answers 47003


@pytest.fixture
def shipped(app, client, auth, sandbox, catalog):
    """The sandbox's 订单发货提醒 (one-time), synced and registered; the marketer logged in."""
    auth.login("marketer")
    catalog.sync()
    row = next(t for t in sandbox.templates(type_=2) if t["title"] == "订单发货提醒")
    return row, catalog.get(row["priTmplId"])


def our_credits(app, openid: str, template_id: str, accepts: int) -> None:
    """Tongzhi's ledger learns ``accepts`` accepts of ``template_id`` by ``openid`` (the mini-program's report)."""
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        if user is None:
            user = WechatUser(openid=openid)
            db.session.add(user)
            db.session.flush()
        for _ in range(accepts):
            record_answers(user.id, [(template_id, "accept")], source="client")
        db.session.commit()


def credits(app, openid: str, template_id: str) -> int:
    return balance(app, openid, template_id)[0]


def post_test_send(client, template, row, openid, **overrides) -> str:
    form = {f"kw_{key}": value for key, value in {**example_data(row), **overrides}.items()}
    form.update({"openid": openid, "miniprogram_state": "formal", "lang": "zh_CN"})
    response = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def only_delivery(app) -> Delivery:
    with app.app_context():
        [delivery] = db.session.scalars(select(Delivery)).all()
        db.session.expunge(delivery)
        return delivery


def test_a_sent_test_send_spends_the_credit(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[0]
    sandbox.grant(openid, template.template_id)
    our_credits(app, openid, template.template_id, 1)

    fragment = post_test_send(client, template, row, openid)

    assert re.search(r'<code class="msgid">\d+</code>', fragment) and "已发送" in fragment
    delivery = only_delivery(app)
    assert delivery.state is DeliveryState.sent and delivery.source is DeliverySource.test
    # Our balance now agrees with WeChat's: the credit is gone, as the next real send will find it.
    assert credits(app, openid, template.template_id) == 0
    assert ledger_statuses(app, delivery.id) == ["spent"]
    assert [m["errcode"] for m in sandbox.messages()] == [0]


def test_a_refused_test_send_gives_the_credit_back(app, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[1]
    sandbox.grant(openid, template.template_id)
    our_credits(app, openid, template.template_id, 1)
    with app.app_context():
        # Past the page's checks (which would refuse it): WeChat itself answers 47003.
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=template.template_id,
            data={**example_data(row), "thing2": TOO_LONG},
        )
        db.session.commit()
        send_now(delivery)
        delivery_id = delivery.id
        assert (delivery.state, delivery.errcode, delivery.reason) == (DeliveryState.failed, 47003, "content")
    assert credits(app, openid, template.template_id) == 1
    assert ledger_statuses(app, delivery_id) == ["released"]
    [message] = sandbox.messages()
    assert message["errcode"] == 47003


def test_43101_on_a_test_send_zeroes_the_balance(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[2]  # WeChat holds no grant for this user...
    our_credits(app, openid, template.template_id, 2)  # ...while our ledger believes in two

    fragment = post_test_send(client, template, row, openid)

    assert '<code class="errcode">43101</code>' in fragment and "未发送" in fragment
    delivery = only_delivery(app)
    assert (delivery.state, delivery.reason) == (DeliveryState.failed, "no_grant")
    assert credits(app, openid, template.template_id) == 0
    assert ledger_statuses(app, delivery.id) == ["reserved", "no_grant"]


@pytest.mark.parametrize("known_user", [True, False], ids=["known user", "openid unknown to Tongzhi"])
def test_a_test_send_without_a_credit_is_skipped_and_wechat_is_not_called(
    app, client, shipped, sandbox, known_user
):
    row, template = shipped
    openid = sandbox.openids()[3]
    sandbox.grant(openid, template.template_id)  # WeChat would deliver it...
    if known_user:
        our_credits(app, openid, template.template_id, 0)  # ...but our ledger holds no credit

    fragment = post_test_send(client, template, row, openid)

    assert sandbox.messages() == []
    assert "授权账本中没有" in fragment and "没有调用微信" in fragment
    delivery = only_delivery(app)
    assert (delivery.state, delivery.reason) == (DeliveryState.skipped, "no_grant")
    assert delivery.errcode is None and delivery.msgid is None
    with app.app_context():
        assert db.session.scalars(select(DeliveryAttempt)).all() == []
    assert ledger_statuses(app, delivery.id) == []


def test_without_htmx_the_skip_reason_is_flashed(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[4]
    form = {f"kw_{key}": value for key, value in example_data(row).items()}
    form.update({"openid": openid, "miniprogram_state": "formal", "lang": "zh_CN"})
    response = client.post(f"/templates/{template.id}/test-send", data=form)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "授权账本中没有" in page and "没有调用微信" in page
    assert sandbox.messages() == []


def test_a_lost_answer_spends_the_credit_and_a_busy_answer_releases_it(app, shipped, sandbox):
    row, template = shipped
    lost, busy = sandbox.openids()[5], sandbox.openids()[6]
    for openid in (lost, busy):
        sandbox.grant(openid, template.template_id)
        our_credits(app, openid, template.template_id, 1)

    def test_send(openid):
        with app.app_context():
            delivery = create_delivery(
                source=DeliverySource.test,
                openid=openid,
                template_id=template.template_id,
                data=example_data(row),
            )
            db.session.commit()
            send_now(delivery)
            return delivery.id, delivery.state

    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    lost_id, lost_state = test_send(lost)
    sandbox.faults(DROP_AFTER_READ_RATE=0.0, ERROR_RATE=1.0)
    busy_id, busy_state = test_send(busy)

    # The same decisions as the engine's: a send that may have been delivered keeps its credit spent...
    assert lost_state is DeliveryState.unknown
    assert credits(app, lost, template.template_id) == 0
    assert ledger_statuses(app, lost_id) == ["spent"]
    # ...and WeChat's -1 gives it back and leaves the row for the engine to retry.
    assert busy_state is DeliveryState.retry_wait
    assert credits(app, busy, template.template_id) == 1
    assert ledger_statuses(app, busy_id) == ["released"]


def test_a_delivery_a_worker_already_claimed_is_not_sent_again(app, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[7]
    sandbox.grant(openid, template.template_id)
    our_credits(app, openid, template.template_id, 1)
    with app.app_context():
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=template.template_id,
            data=example_data(row),
        )
        db.session.commit()
        delivery.state = DeliveryState.sending  # as a worker's claim leaves it
        db.session.commit()
        with pytest.raises(ValueError, match="not pending"):
            send_now(delivery)
        db.session.rollback()
        delivery_id = delivery.id
    assert sandbox.messages() == []
    assert ledger_statuses(app, delivery_id) == []
    assert credits(app, openid, template.template_id) == 1
