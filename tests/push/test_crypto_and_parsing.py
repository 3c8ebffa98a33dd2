"""Our push decryption against the sandbox's independent encryption, and the two body formats."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dashboard.push import crypto
from dashboard.push.parsing import PushFormatError, parse
from dashboard.sandbox import push as sandbox_push
from tests.api.live import AES_KEY

APPID = "wx0123456789abcdef"


def test_it_decrypts_what_the_sandbox_encrypts():
    message = '订阅消息 ✓ {"a": 1}'.encode()
    encrypted = sandbox_push.encrypt(AES_KEY, APPID, message)
    assert crypto.decrypt(AES_KEY, encrypted, APPID) == message


def test_it_refuses_another_appid_and_damaged_bodies():
    encrypted = sandbox_push.encrypt(AES_KEY, "wxsomeoneelse00000", b"hello")
    with pytest.raises(crypto.PushCryptoError, match="another AppID"):
        crypto.decrypt(AES_KEY, encrypted, APPID)
    for damaged in ("not base64!!", base64.b64encode(b"short").decode(), ""):
        with pytest.raises(crypto.PushCryptoError):
            crypto.decrypt(AES_KEY, damaged, APPID)
    # Whole blocks with a padding byte that cannot be: 0.
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    bad = encryptor.update(bytes(32)) + encryptor.finalize()
    with pytest.raises(crypto.PushCryptoError, match="padding"):
        crypto.decrypt(AES_KEY, base64.b64encode(bad).decode(), APPID)


def test_signatures_follow_the_documented_sort_and_sha1():
    assert crypto.signature("token", "1", "2") == sandbox_push.signature("token", "1", "2")
    assert crypto.msg_signature("t", "1", "2", "E") == sandbox_push.msg_signature("t", "1", "2", "E")
    assert crypto.same(crypto.signature("token", "1", "2"), crypto.signature("token", "1", "2").upper())
    assert not crypto.same(crypto.signature("token", "1", "2"), None)


def test_json_list_is_an_object_for_one_item_and_an_array_for_several():
    one = {
        "FromUserName": "o1",
        "CreateTime": "1",
        "Event": "subscribe_msg_popup_event",
        "List": {"TemplateId": "A", "SubscribeStatusString": "accept", "PopupScene": "0"},
    }
    two = {
        **one,
        "List": [one["List"], {"TemplateId": "B", "SubscribeStatusString": "reject", "PopupScene": "0"}],
    }
    assert [i["TemplateId"] for i in parse(json.dumps(one).encode()).items] == ["A"]
    assert [i["TemplateId"] for i in parse(json.dumps(two).encode()).items] == ["A", "B"]


def test_xml_items_sit_inside_the_event_wrapper():
    event = sandbox_push.Event(
        "subscribe_msg_sent_event",
        "o1",
        1700000000,
        [{"TemplateId": "A", "MsgID": "1864323726461255680", "ErrorCode": "0", "ErrorStatus": "success"}],
    )
    message = parse(sandbox_push.event_xml(event, "gh_x").encode())
    assert (message.body_format, message.event, message.openid, message.create_time) == (
        "xml",
        "subscribe_msg_sent_event",
        "o1",
        1700000000,
    )
    assert message.items == event.items


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello",
        b"[1, 2]",
        b"{not json",
        b"<xml><unclosed></xml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml>&b;</xml>',
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><FromUserName>&e;</FromUserName></xml>',
        json.dumps({"Event": "subscribe_msg_popup_event", "List": [1, 2]}).encode(),
        json.dumps({"Event": "subscribe_msg_popup_event", "List": {"TemplateId": {"nested": 1}}}).encode(),
    ],
)
def test_malformed_and_hostile_bodies_are_refused(body):
    with pytest.raises(PushFormatError):
        parse(body)
