"""/wechat/push through the test client: signatures, secure mode, de-duplication, what each event does."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, WechatUser
from dashboard.models.grants import GrantEvent, SentReport, WechatPush
from dashboard.push.services import attach_sent_report
from dashboard.sandbox.push import Event, build_envelope, signature
from tests.api.live import AES_KEY, PUSH_TOKEN
from tests.push.helpers import APPID, OPENID, configure_for, count, credits, popup, post, push, settings


@pytest.fixture
def config_overrides():
    return {
        "WECHAT_APPID": APPID,
        "WECHAT_PUSH_TOKEN": PUSH_TOKEN,
        "WECHAT_PUSH_AES_KEY": AES_KEY,
    }


def signed_now(nonce="2"):
    """Query parameters of a plaintext push signed just now, for bodies built by hand."""
    timestamp = str(int(time.time()))
    return {"timestamp": timestamp, "nonce": nonce, "signature": signature(PUSH_TOKEN, timestamp, nonce)}


def test_url_verification_echoes_echostr_verbatim_as_plain_text(client):
    params = {"timestamp": "1700000000", "nonce": "42", "echostr": "8734923749837 ä&<x>"}
    good = client.get(
        "/wechat/push", query_string={**params, "signature": signature(PUSH_TOKEN, "1700000000", "42")}
    )
    assert good.status_code == 200 and good.mimetype == "text/plain"
    assert good.get_data(as_text=True) == params["echostr"]
    bad = client.get("/wechat/push", query_string={**params, "signature": "0" * 40})
    assert bad.status_code == 403 and params["echostr"] not in bad.get_data(as_text=True)
    assert client.get("/wechat/push").status_code == 403


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("mode", ["plaintext", "secure"])
def test_a_popup_event_credits_once_however_often_it_is_delivered(app, client, fmt, mode):
    event = popup(("TA", "accept"), ("TB", "reject"))
    first = push(client, event, fmt=fmt, mode=mode)
    assert first.status_code == 200 and first.get_data(as_text=True) == "success"
    for _ in range(2):  # WeChat's retries: same body, new nonce and signature
        assert push(client, event, fmt=fmt, mode=mode).get_data(as_text=True) == "success"
    assert credits(app, "TA") == 1 and credits(app, "TB") == 0
    assert count(app, WechatPush) == 1 and count(app, GrantEvent) == 2
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == OPENID))
        assert user is not None  # a user Tongzhi had not seen is created by their first event
        assert {e.scene for e in db.session.scalars(select(GrantEvent))} == {"0"}


def test_two_different_events_in_the_same_second_are_both_applied(app, client):
    push(client, popup(("TA", "accept")))
    push(client, popup(("TB", "accept")))
    assert credits(app, "TA") == 1 and credits(app, "TB") == 1


def test_a_change_event_zeroes_and_the_same_one_again_does_nothing(app, client):
    for second in range(3):
        push(client, popup(("TA", "accept"), when=1_790_000_000 + second))
    change = popup(("TA", "reject"), name="subscribe_msg_change_event", when=1_790_000_100)
    change.items[0].pop("PopupScene")
    assert push(client, change).status_code == 200
    assert credits(app, "TA") == 0
    push(client, popup(("TA", "accept"), when=1_790_000_200))
    push(client, change)  # a late retry of the old change event must not zero the new credit
    assert credits(app, "TA") == 1


@pytest.mark.parametrize(
    "tamper",
    ["signature", "timestamp", "token", "msg_signature", "encrypt", "appid"],
)
def test_a_forged_or_foreign_push_gets_403_and_changes_nothing(app, client, tamper):
    event = popup(("TA", "accept"))
    mode = "secure" if tamper in ("msg_signature", "encrypt", "appid") else "plaintext"
    configure_for(app, mode)
    envelope = build_envelope(
        event,
        settings(
            mode=mode,
            token="forged-token" if tamper == "token" else PUSH_TOKEN,
            appid="wxsomeoneelse00000" if tamper == "appid" else "wxpushtest00000000",
        ),
    )
    params, body = dict(envelope.params), envelope.body
    if tamper == "signature":
        params["signature"] = "f" * 40
    elif tamper == "timestamp":
        params["timestamp"] = str(int(params["timestamp"]) + 1)
    elif tamper == "msg_signature":
        params["msg_signature"] = "0" * 40
    elif tamper == "encrypt":
        envelope_body = json.loads(body)
        envelope_body["Encrypt"] = envelope_body["Encrypt"][:-8] + "AAAAAAA="
        body = json.dumps(envelope_body).encode()
    response = client.post("/wechat/push", query_string=params, data=body, content_type=envelope.content_type)
    assert response.status_code == 403
    assert count(app, WechatPush) == 0 and count(app, GrantEvent) == 0 and count(app, WechatUser) == 0


def test_without_a_push_token_configured_every_push_is_refused(app, client):
    app.config["WECHAT_PUSH_TOKEN"] = None
    configure_for(app, "plaintext")
    envelope = build_envelope(popup(("TA", "accept")), settings())
    assert client.post("/wechat/push", query_string=envelope.params, data=envelope.body).status_code == 403
    assert count(app, GrantEvent) == 0


def test_a_secure_push_without_an_aes_key_configured_is_refused(app, client):
    configure_for(app, "plaintext")  # no EncodingAESKey
    envelope = build_envelope(popup(("TA", "accept")), settings(mode="secure"))
    assert post(client, envelope).status_code == 403
    assert count(app, GrantEvent) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"{}",
        json.dumps({"Event": "subscribe_msg_popup_event", "FromUserName": "", "CreateTime": "1"}).encode(),
        json.dumps(
            {"Event": "subscribe_msg_popup_event", "FromUserName": "o1", "CreateTime": "soon"}
        ).encode(),
    ],
)
def test_a_signed_but_malformed_body_is_a_400_and_changes_nothing(app, client, body):
    configure_for(app, "plaintext")
    response = client.post("/wechat/push", query_string=signed_now(), data=body)
    assert response.status_code == (200 if body == b"{}" else 400)  # {} is an event we ignore
    assert count(app, GrantEvent) == 0


def test_other_events_are_acknowledged_and_ignored(app, client):
    event = Event("user_enter_tempsession", OPENID, 1_790_000_000, [])
    assert push(client, event).get_data(as_text=True) == "success"
    assert count(app, WechatPush) == 0


def test_a_huge_push_is_refused(app, client):
    configure_for(app, "plaintext")
    response = client.post("/wechat/push", query_string=signed_now(), data=b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413


def _delivery(app, msgid):
    with app.app_context():
        delivery = Delivery(
            source=DeliverySource.test,
            openid=OPENID,
            template_id="TA",
            data={},
            msgid=msgid,
        )
        db.session.add(delivery)
        db.session.commit()
        return delivery.id


def sent(msgid, code="0", status="success", when=1_790_000_500):
    return Event(
        "subscribe_msg_sent_event",
        OPENID,
        when,
        [{"TemplateId": "TA", "MsgID": msgid, "ErrorCode": code, "ErrorStatus": status}],
    )


def test_a_sent_event_is_joined_to_the_delivery_with_its_msgid(app, client):
    delivery_id = _delivery(app, "1864323726461255680")
    assert (
        push(client, sent("1864323726461255680", "10001", "failed: system error"), fmt="xml").status_code
        == 200
    )
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.report_errcode, delivery.report_status) == (10001, "failed: system error")
        report = db.session.scalars(select(SentReport)).one()
        assert report.delivery_id == delivery_id


def test_a_sent_event_that_arrives_first_is_attached_later(app, client):
    push(client, sent("99887766"))
    with app.app_context():
        assert db.session.scalars(select(SentReport)).one().delivery_id is None
    delivery_id = _delivery(app, "99887766")
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert attach_sent_report(delivery) is True
        db.session.commit()
        assert (delivery.report_errcode, delivery.report_status) == (0, "success")
        assert attach_sent_report(delivery) is False
