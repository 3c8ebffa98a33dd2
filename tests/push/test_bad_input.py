"""Correctly signed pushes whose decoded body no database can store: a 4xx or an acknowledgement, never a
5xx, never a stored NUL. (A signed push is what an attacker who holds the token, or a WeChat bug, sends.)

Run with TEST_DATABASE_URL set too: PostgreSQL refuses NUL in text and integers at or above 2^31.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.grants import GrantEvent, SentReport, WechatPush
from dashboard.sandbox.push import encrypt, msg_signature, signature
from dashboard.storable import is_storable
from tests.api.live import AES_KEY, PUSH_TOKEN

APPID = "wxpushtest00000000"
OPENID = "oPushUser0000000000000000001"
TEMPLATE = "TMPL_push_bad_input_000000000000000000000"


@pytest.fixture
def config_overrides():
    return {"WECHAT_APPID": APPID, "WECHAT_PUSH_TOKEN": PUSH_TOKEN, "WECHAT_PUSH_AES_KEY": AES_KEY}


def event(**changes) -> dict:
    body = {
        "ToUserName": "gh_t",
        "FromUserName": OPENID,
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": "subscribe_msg_popup_event",
        "List": {"TemplateId": TEMPLATE, "SubscribeStatusString": "accept", "PopupScene": "0"},
    }
    body.update(changes)
    return body


def sent_event(**item) -> dict:
    return event(
        Event="subscribe_msg_sent_event",
        List={
            "TemplateId": TEMPLATE,
            "MsgID": "1700000000000000001",
            "ErrorCode": "0",
            "ErrorStatus": "success",
            **item,
        },
    )


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def as_json(body: dict, replace: dict[str, str] | None = None) -> bytes:
    """JSON text of ``body``, with placeholders swapped for raw JSON no serializer would write."""
    text = json.dumps(body, ensure_ascii=False)
    for placeholder, raw in (replace or {}).items():
        text = text.replace(json.dumps(placeholder), raw)
    return text.encode("utf-8", "surrogatepass")


BAD_BODIES = {
    "nul-openid": as_json(event(FromUserName="o\x00penid")),
    "nul-template": as_json(event(List={"TemplateId": "T\x00", "SubscribeStatusString": "accept"})),
    "nul-status": as_json(event(List={"TemplateId": TEMPLATE, "SubscribeStatusString": "accept\x00"})),
    "nul-event": as_json(event(Event="subscribe_msg_popup_event\x00")),
    "nul-key": as_json(event(List={"TemplateId": TEMPLATE, "SubscribeStatusString": "accept", "K\x00": "v"})),
    "nul-msgid": as_json(sent_event(MsgID="1\x00")),
    "surrogate-openid": as_json(event(FromUserName="SURROGATE"), {"SURROGATE": '"o\\ud800"'}),
    "surrogate-template": as_json(
        event(List={"TemplateId": "SURROGATE", "SubscribeStatusString": "accept"}), {"SURROGATE": '"\\udfff"'}
    ),
    "surrogate-errorstatus": as_json(sent_event(ErrorStatus="SURROGATE"), {"SURROGATE": '"\\ud83d"'}),
    "deep-field": as_json(event(Extra="DEEP"), {"DEEP": deep(5000)}),
    "deep-list": as_json(event(List="DEEP"), {"DEEP": deep(5000)}),
    "deep-object": as_json(event(Extra="DEEP"), {"DEEP": '{"a":' * 5000 + "1" + "}" * 5000}),
    "huge-createtime": as_json(event(CreateTime="HUGE"), {"HUGE": "9" * 5000}),
    "big-createtime": as_json(event(CreateTime="HUGE"), {"HUGE": "99999999999999999999"}),
    "float-createtime": as_json(event(CreateTime="HUGE"), {"HUGE": "1e999"}),
    "nan-createtime": as_json(event(CreateTime="HUGE"), {"HUGE": "NaN"}),
    "negative-createtime": as_json(event(CreateTime=-(2**63))),
    "huge-errorcode": as_json(sent_event(ErrorCode="HUGE"), {"HUGE": "2147483648"}),
    "huge-errorcode-text": as_json(sent_event(ErrorCode="99999999999999999999999")),
    "huge-msgid": as_json(sent_event(MsgID="HUGE"), {"HUGE": "9" * 40}),
    "huge-popupscene": as_json(
        event(List={"TemplateId": TEMPLATE, "SubscribeStatusString": "accept", "PopupScene": "HUGE"}),
        {"HUGE": "1e999"},
    ),
    "xml-nul-escape": (
        f"<xml><ToUserName>gh_t</ToUserName><FromUserName>o&#0;</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
        "<Event>subscribe_msg_popup_event</Event></xml>"
    ).encode(),
    "xml-nul-byte": (
        f"<xml><ToUserName>gh_t</ToUserName><FromUserName>o\x00</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><Event>subscribe_msg_popup_event</Event></xml>"
    ).encode(),
    "xml-surrogate": (
        f"<xml><FromUserName>o&#xD800;</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        "<Event>subscribe_msg_popup_event</Event></xml>"
    ).encode(),
    "xml-deep": (
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
        "<Event>subscribe_msg_popup_event</Event>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>"
    ).encode(),
    "xml-huge-createtime": (
        f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>{'9' * 5000}</CreateTime>"
        "<Event>subscribe_msg_popup_event</Event></xml>"
    ).encode(),
    "not-utf8": as_json(event(FromUserName="PLACE")).replace(b'"PLACE"', b'"\xff\xfe"'),
}


def signed_post(client, plain: bytes, *, secure: bool):
    """Sign ``plain`` exactly as WeChat would (and in secure mode encrypt it first) and post it."""
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    params = {"signature": signature(PUSH_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    xml = plain.lstrip().startswith(b"<")
    content_type = "text/xml; charset=utf-8" if xml else "application/json; charset=utf-8"
    if secure:
        encrypted = encrypt(AES_KEY, APPID, plain)
        params.update(
            encrypt_type="aes", msg_signature=msg_signature(PUSH_TOKEN, timestamp, nonce, encrypted)
        )
        if xml:
            body = (
                f"<xml><ToUserName>gh_t</ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
            )
        else:
            body = json.dumps({"ToUserName": "gh_t", "Encrypt": encrypted}).encode()
    else:
        client.application.config["WECHAT_PUSH_AES_KEY"] = None  # plaintext is accepted only without a key
        body = plain
    return client.post("/wechat/push", query_string=params, data=body, headers={"Content-Type": content_type})


def unstorable_values(app) -> list[str]:
    """Every text value stored by a push (columns and inside JSON columns) that holds a NUL or a surrogate."""
    found = []

    def walk(where: str, value) -> None:
        if isinstance(value, str) and not is_storable(value):
            found.append(f"{where}: {value!r}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(where, key)
                walk(where, item)
        elif isinstance(value, list):
            for item in value:
                walk(where, item)

    with app.app_context():
        for model in (WechatPush, GrantEvent, SentReport, WechatUser, Delivery):
            for row in db.session.scalars(select(model)):
                for column in model.__table__.columns:
                    walk(f"{model.__name__}.{column.key}", getattr(row, column.key, None))
    return found


@pytest.mark.parametrize("mode", ["secure", "plaintext"])
@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_signed_push_with_a_body_no_database_can_store_is_never_a_5xx(app, client, name, mode):
    response = signed_post(client, BAD_BODIES[name], secure=mode == "secure")
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    # Refused (4xx), or acknowledged with the unusable parts skipped: nothing unstorable was kept.
    assert unstorable_values(app) == []
    if name.startswith(("nul-", "surrogate-", "deep-", "nan-", "not-utf8", "xml-nul", "xml-surrogate")):
        assert response.status_code == 400
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(WechatUser)) == 0


@pytest.mark.parametrize(
    "body",
    [
        event(FromUserName=OPENID + "\n"),
        event(List={"TemplateId": TEMPLATE + "\n", "SubscribeStatusString": "accept"}),
    ],
    ids=["openid", "template"],
)
def test_a_trailing_newline_does_not_pass_for_an_id(app, client, body):
    """``^...$`` lets one trailing newline through ``re.match``: ids are checked whole."""
    signed_post(client, as_json(body), secure=True)
    with app.app_context():
        assert db.session.scalars(select(WechatUser.openid)).all() in ([], [OPENID])
        assert db.session.scalar(select(func.count()).select_from(GrantEvent)) == 0


def test_a_good_push_still_counts_among_the_bad(app, client):
    """The same helper with a well-formed body is applied, so the refusals above are about the bodies."""
    response = signed_post(client, as_json(event()), secure=True)
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GrantEvent)) == 1
