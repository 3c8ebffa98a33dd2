"""Event pushes to a local receiver: JSON/XML, plaintext/secure, popup/change/sent events."""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own sandbox's output in a test

import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .helpers import APPID, TIMEOUT, VALID_DATA, first_user, prompt, send, template_by_title, token

PUSH_TOKEN = "pushtoken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def _check_signature(item: dict) -> None:
    q = item["query"]
    assert q["signature"] == _sha1(PUSH_TOKEN, q["timestamp"], q["nonce"])


def _decrypt(encrypted: str) -> tuple[bytes, bytes]:
    """Independent few-line decryption: AES-256-CBC, IV = key[:16], PKCS#7/32, 16 random ‖ len ‖ msg ‖ appid."""
    key = base64.b64decode(AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    length = int.from_bytes(plain[16:20], "big")
    return plain[20 : 20 + length], plain[20 + length :]


def _templates(url: str) -> tuple[str, str, str]:
    access_token = token(url)
    return (
        template_by_title(url, access_token, "订单发货提醒")["priTmplId"],
        template_by_title(url, access_token, "退款通知")["priTmplId"],
        template_by_title(url, access_token, "会议提醒")["priTmplId"],
    )


def test_plaintext_json_list_is_an_object_for_one_item_and_an_array_for_two(make_sandbox, receiver):
    sb = make_sandbox(PUSH_URL=receiver.url, PUSH_TOKEN=PUSH_TOKEN, ORIGINAL_ID="gh_0123456789ab")
    order, refund, _ = _templates(sb.url)
    openid = first_user(sb.url)

    prompt(sb.url, openid, {order: "accept"}, scene=0)
    one = receiver.get()
    _check_signature(one)
    assert "encrypt_type" not in one["query"]
    event = json.loads(one["body"])
    assert event["ToUserName"] == "gh_0123456789ab"
    assert event["FromUserName"] == openid
    assert event["MsgType"] == "event"
    assert event["Event"] == "subscribe_msg_popup_event"
    assert isinstance(event["CreateTime"], str)
    assert event["List"] == {"TemplateId": order, "SubscribeStatusString": "accept", "PopupScene": "0"}

    prompt(sb.url, openid, {order: "accept", refund: "reject"})
    two = json.loads(receiver.get()["body"])
    assert two["List"] == [
        {"TemplateId": order, "SubscribeStatusString": "accept", "PopupScene": "0"},
        {"TemplateId": refund, "SubscribeStatusString": "reject", "PopupScene": "0"},
    ]

    reply = send(sb.url, token(sb.url), touser=openid, template_id=order, data=VALID_DATA["订单发货提醒"])
    sent = json.loads(receiver.get()["body"])
    assert sent["Event"] == "subscribe_msg_sent_event"
    assert sent["List"] == {
        "TemplateId": order,
        "MsgID": str(reply["msgid"]),
        "ErrorCode": "0",
        "ErrorStatus": "success",
    }

    requests.post(
        f"{sb.url}/sandbox/api/users/{openid}/turn-off", json={"template_id": order}, timeout=TIMEOUT
    )
    change = json.loads(receiver.get()["body"])
    assert change["Event"] == "subscribe_msg_change_event"
    assert change["List"] == {"TemplateId": order, "SubscribeStatusString": "reject"}

    pushes = requests.get(sb.url + "/sandbox/api/pushes?wait=1", timeout=TIMEOUT).json()
    assert pushes["count"] == 4
    assert all(p["ok"] for p in pushes["pushes"])


def test_plaintext_xml_wraps_the_list_items(make_sandbox, receiver):
    sb = make_sandbox(PUSH_URL=receiver.url, PUSH_TOKEN=PUSH_TOKEN, PUSH_FORMAT="xml")
    order, refund, meeting = _templates(sb.url)
    openid = first_user(sb.url)

    prompt(sb.url, openid, {order: "accept", refund: "accept"}, scene=0)
    item = receiver.get()
    _check_signature(item)
    root = ET.fromstring(item["body"])  # noqa: S314 - trusted test input
    assert root.findtext("Event") == "subscribe_msg_popup_event"
    assert root.findtext("FromUserName") == openid
    lists = root.findall("SubscribeMsgPopupEvent/List")
    assert [(x.findtext("TemplateId"), x.findtext("SubscribeStatusString")) for x in lists] == [
        (order, "accept"),
        (refund, "accept"),
    ]
    assert lists[0].findtext("PopupScene") == "0"

    prompt(sb.url, openid, {meeting: "accept"})
    receiver.get()
    reply = send(sb.url, token(sb.url), touser=openid, template_id=meeting, data=VALID_DATA["会议提醒"])
    sent = ET.fromstring(receiver.get()["body"])  # noqa: S314 - trusted test input
    assert sent.findtext("SubscribeMsgSentEvent/List/MsgID") == str(reply["msgid"])
    assert sent.findtext("SubscribeMsgSentEvent/List/ErrorStatus") == "success"

    requests.post(
        f"{sb.url}/sandbox/api/users/{openid}/turn-off", json={"template_id": meeting}, timeout=TIMEOUT
    )
    change = ET.fromstring(receiver.get()["body"])  # noqa: S314 - trusted test input
    assert change.findtext("SubscribeMsgChangeEvent/List/SubscribeStatusString") == "reject"


def test_secure_json_is_signed_and_decrypts_with_an_independent_implementation(make_sandbox, receiver):
    sb = make_sandbox(PUSH_URL=receiver.url, PUSH_TOKEN=PUSH_TOKEN, PUSH_MODE="secure", PUSH_AES_KEY=AES_KEY)
    order, _, _ = _templates(sb.url)
    openid = first_user(sb.url)
    prompt(sb.url, openid, {order: "accept"})
    item = receiver.get()
    q = item["query"]
    _check_signature(item)
    assert q["encrypt_type"] == "aes"
    outer = json.loads(item["body"])
    assert set(outer) == {"ToUserName", "Encrypt"}
    assert q["msg_signature"] == _sha1(PUSH_TOKEN, q["timestamp"], q["nonce"], outer["Encrypt"])
    message, appid = _decrypt(outer["Encrypt"])
    assert appid == APPID.encode()
    event = json.loads(message)
    assert event["Event"] == "subscribe_msg_popup_event"
    assert event["List"]["TemplateId"] == order


def test_secure_xml(make_sandbox, receiver):
    sb = make_sandbox(
        PUSH_URL=receiver.url,
        PUSH_TOKEN=PUSH_TOKEN,
        PUSH_MODE="secure",
        PUSH_AES_KEY=AES_KEY,
        PUSH_FORMAT="xml",
    )
    order, _, _ = _templates(sb.url)
    prompt(sb.url, first_user(sb.url), {order: "reject"})
    item = receiver.get()
    outer = ET.fromstring(item["body"])  # noqa: S314 - trusted test input
    encrypted = outer.findtext("Encrypt")
    q = item["query"]
    assert q["msg_signature"] == _sha1(PUSH_TOKEN, q["timestamp"], q["nonce"], encrypted)
    message, _ = _decrypt(encrypted)
    inner = ET.fromstring(message)  # noqa: S314 - trusted test input
    assert inner.findtext("SubscribeMsgPopupEvent/List/SubscribeStatusString") == "reject"


def test_push_failures_are_recorded_not_raised(make_sandbox):
    sb = make_sandbox(PUSH_URL="http://127.0.0.1:9/unreachable", PUSH_TIMEOUT=1)
    order, _, _ = _templates(sb.url)
    assert prompt(sb.url, first_user(sb.url), {order: "accept"}).status_code == 200
    pushes = requests.get(sb.url + "/sandbox/api/pushes?wait=1", timeout=TIMEOUT).json()["pushes"]
    assert len(pushes) == 1
    assert pushes[0]["ok"] is False
    assert pushes[0]["error"]


def test_url_verification_and_runtime_push_config(sandbox, receiver):
    reply = requests.post(
        sandbox.url + "/sandbox/api/push-config",
        json={"PUSH_URL": receiver.url, "PUSH_TOKEN": PUSH_TOKEN},
        timeout=TIMEOUT,
    )
    assert reply.json()["PUSH_URL"] == receiver.url
    result = requests.post(sandbox.url + "/sandbox/api/push/verify", timeout=TIMEOUT).json()
    assert result["ok"] is True
    item = receiver.get()
    assert item["method"] == "GET"
    _check_signature(item)
    bad = requests.post(
        sandbox.url + "/sandbox/api/push-config", json={"PUSH_MODE": "secure"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400
