"""The Deliveries page shows every send attempt with WeChat's answer; test sends go through send_now."""

import pytest
from sqlalchemy import select

from dashboard.deliveries.services import create_delivery, send_now
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser
from tests.api.live import mp_overrides
from tests.dispatch.helpers import add_user, grant
from tests.sandbox_api import example_data


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


def our_credits(app, openid, template, accepts=1):
    """Tongzhi's ledger learns ``accepts`` accepts: a test send spends a credit like any send."""
    with app.app_context():
        user_id = db.session.scalar(select(WechatUser.id).where(WechatUser.openid == openid))
        if user_id is None:
            user_id = add_user(openid)
        grant(user_id, template["priTmplId"], accepts)
        db.session.commit()


def send_test_message(app, sandbox, openid, template):
    with app.app_context():
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=template["priTmplId"],
            data=example_data(template),
        )
        db.session.commit()
        send_now(delivery)
        return delivery.id


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


@pytest.fixture
def openid(sandbox):
    return sandbox.openids()[0]


def test_a_granted_test_send_is_recorded_as_sent_with_its_msgid(app, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    our_credits(app, openid, template)
    delivery_id = send_test_message(app, sandbox, openid, template)
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery.state == DeliveryState.sent and delivery.errcode == 0
        assert delivery.msgid == str(sandbox.messages()[-1]["msgid"])
        assert [a.outcome for a in delivery.history] == [DeliveryState.sent]


def test_a_send_without_grant_is_failed_with_43101(app, sandbox, openid, template):
    our_credits(app, openid, template)  # our ledger believes in a credit WeChat does not have
    delivery_id = send_test_message(app, sandbox, openid, template)
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery.state == DeliveryState.failed and delivery.errcode == 43101
        assert delivery.reason == "no_grant" and "rid:" in delivery.errmsg


def test_the_page_lists_filters_and_details_deliveries(app, client, auth, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    our_credits(app, openid, template, accepts=2)  # one more than WeChat holds
    sent_id = send_test_message(app, sandbox, openid, template)
    failed_id = send_test_message(app, sandbox, openid, template)  # WeChat's one credit is used up: 43101
    auth.login("viewer")
    page = client.get("/deliveries/").get_data(as_text=True)
    assert "已发送 sent 1" in page and "失败 failed 1" in page and "43101" in page
    only_failed = client.get("/deliveries/?state=failed", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert f"/deliveries/{failed_id}" in only_failed and f"/deliveries/{sent_id}" not in only_failed
    assert "<html" not in only_failed
    detail = client.get(f"/deliveries/{sent_id}").get_data(as_text=True)
    assert "尝试次数" in detail and "已发送 sent" in detail
    assert client.get("/deliveries/999999").status_code == 404
    assert client.get("/deliveries/?errcode=abc&state=nonsense").status_code == 200
