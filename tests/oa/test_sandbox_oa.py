"""The sandbox's linked Official Account, driven over HTTP as Tongzhi (or any OA client) would drive it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own sandbox's output in a test

import pytest
import requests

from dashboard.sandbox.push import decrypt
from tests.oa.helpers import TIMEOUT, oa_get, oa_post, oa_token, sandbox_followers
from tests.sandbox.conftest import Receiver

SEND = "/cgi-bin/message/template/send"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def call(sandbox, method: str, path: str, token: str, body=None, **params):
    response = requests.request(
        method, sandbox.url + path, params={"access_token": token, **params}, json=body, timeout=TIMEOUT
    )
    return response.json()


def templates(sandbox, token):
    return {
        t["title"]: t
        for t in call(sandbox, "GET", "/cgi-bin/template/get_all_private_template", token)["template_list"]
    }


def mp_user(sandbox, follower):
    return next(
        u for u in sandbox.get("/users", per_page=500)["users"] if u["openid"] == follower["mp_openid"]
    )


def test_most_users_follow_and_a_follower_shares_the_mini_program_users_unionid(sandbox):
    followers = sandbox_followers(sandbox)
    linked = [f for f in followers if f["mp_openid"]]
    assert len(linked) == 20  # every seeded user has an OA openid
    following = [f for f in linked if f["subscribed"]]
    assert len(following) == 16  # every fifth seeded user does not follow
    for follower in linked:
        assert follower["openid"] != follower["mp_openid"]
        assert follower["unionid"] == mp_user(sandbox, follower)["unionid"]
    only = [f for f in followers if not f["mp_openid"]]
    assert len(only) == 3 and all(f["subscribed"] and f["unionid"] for f in only)


def test_user_get_pages_with_next_openid_and_batchget_reads_unionids(sandbox):
    token = oa_token(sandbox)
    listed, next_openid, pages = [], "", 0
    while True:
        page = call(sandbox, "GET", "/cgi-bin/user/get", token, next_openid=next_openid)
        assert page["total"] == 19
        if page["count"] == 0:
            assert page["next_openid"] == "" and "data" not in page
            break
        pages += 1
        assert page["count"] <= 5 and page["next_openid"] == page["data"]["openid"][-1]
        listed += page["data"]["openid"]
        next_openid = page["next_openid"]
    assert pages == 4 and len(listed) == len(set(listed)) == 19
    info = call(
        sandbox, "POST", "/cgi-bin/user/info/batchget", token, {"user_list": [{"openid": o} for o in listed]}
    )
    rows = info["user_info_list"]
    assert [r["openid"] for r in rows] == listed
    assert all(r["subscribe"] == 1 and r["subscribe_time"] > 0 for r in rows)
    expected = {f["openid"]: f["unionid"] for f in sandbox_followers(sandbox)}
    assert {r["openid"]: r.get("unionid") for r in rows} == {o: expected[o] for o in listed}
    not_following = sandbox_followers(sandbox, subscribed=False)[0]["openid"]
    answer = call(
        sandbox, "POST", "/cgi-bin/user/info/batchget", token, {"user_list": [{"openid": not_following}]}
    )
    assert answer["user_info_list"] == [{"subscribe": 0, "openid": not_following}]
    too_many = {"user_list": [{"openid": listed[0]}] * 101}
    assert call(sandbox, "POST", "/cgi-bin/user/info/batchget", token, too_many)["errcode"] == 40032
    unknown = {"user_list": [{"openid": "oNobodyKnowsThisOpenid000000"}]}
    assert call(sandbox, "POST", "/cgi-bin/user/info/batchget", token, unknown)["errcode"] == 40003


def test_the_oa_and_the_mini_program_have_their_own_tokens(sandbox):
    token = oa_token(sandbox)
    mp_token = requests.post(
        f"{sandbox.url}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": sandbox.appid, "secret": sandbox.secret},
        timeout=TIMEOUT,
    ).json()["access_token"]
    assert token != mp_token
    assert call(sandbox, "GET", "/cgi-bin/user/get", mp_token)["errcode"] == 48001
    assert call(sandbox, "GET", "/wxaapi/newtmpl/gettemplate", token)["errcode"] == 48001
    assert oa_token(sandbox) == token  # normal mode: the same token while valid
    state = sandbox.state()
    assert state["oa"]["token_fetches"]["stable"] == 1 and state["token_fetches"]["stable"] == 1
    wrong = {"grant_type": "client_credential", "appid": state["oa"]["appid"], "secret": "nope"}
    assert (
        requests.post(f"{sandbox.url}/cgi-bin/stable_token", json=wrong, timeout=TIMEOUT).json()["errcode"]
        == 40125
    )


def _send(sandbox, token, touser, template, data, **extra):
    body = {
        "touser": touser,
        "template_id": template["template_id"],
        "data": {k: {"value": v} for k, v in data.items()},
        **extra,
    }
    return call(sandbox, "POST", SEND, token, body)


ORDER = {
    "first": "您的订单已发货",
    "keyword1": "A20240101001",
    "keyword2": "咖啡豆",
    "keyword3": "2024年1月1日",
    "remark": "",
}


def test_a_send_follows_the_oas_rules(sandbox):
    token = oa_token(sandbox)
    order = templates(sandbox, token)["订单发货通知"]
    following = sandbox_followers(sandbox, subscribed=True)[0]["openid"]
    not_following = sandbox_followers(sandbox, subscribed=False)[0]["openid"]
    ok = _send(
        sandbox,
        token,
        following,
        order,
        ORDER,
        miniprogram={"appid": sandbox.appid, "pagepath": "pages/order/detail?id=1"},
    )
    assert ok["errcode"] == 0 and ok["msgid"]
    assert _send(sandbox, token, not_following, order, ORDER)["errcode"] == 43004
    assert _send(sandbox, token, "oUnknownOpenid00000000000000", order, ORDER)["errcode"] == 40003
    assert _send(sandbox, token, following, {"template_id": "nope"}, ORDER)["errcode"] == 40037
    # The mini-program's openid is not the OA's.
    mp_openid = sandbox_followers(sandbox, subscribed=True)[0]["mp_openid"]
    assert _send(sandbox, token, mp_openid, order, ORDER)["errcode"] == 40003
    bad_page = {"appid": sandbox.appid, "pagepath": "pages/nowhere"}
    assert _send(sandbox, token, following, order, ORDER, miniprogram=bad_page)["errcode"] == 40165
    state = oa_get(sandbox, "/state")
    assert state["sends"]["delivered"] == 1 and state["sends"]["by_errcode"]["43004"] == 1


def test_client_msg_id_sends_once_per_openid_within_the_window(sandbox):
    token = oa_token(sandbox)
    order = templates(sandbox, token)["订单发货通知"]
    first, second = (f["openid"] for f in sandbox_followers(sandbox, subscribed=True)[:2])
    one = _send(sandbox, token, first, order, ORDER, client_msg_id="delivery-7-1")
    again = _send(sandbox, token, first, order, ORDER, client_msg_id="delivery-7-1")
    other_user = _send(sandbox, token, second, order, ORDER, client_msg_id="delivery-7-1")
    assert one["errcode"] == again["errcode"] == 0 and again["msgid"] == one["msgid"]
    assert other_user["msgid"] != one["msgid"]
    state = oa_get(sandbox, "/state")
    assert (state["sends"]["delivered"], state["sends"]["repeats"]) == (2, 1)
    oa_post(sandbox, "/settings", {"OA_CLIENT_MSG_ID_WINDOW": 0})
    later = _send(sandbox, token, first, order, ORDER, client_msg_id="delivery-7-1")
    assert later["msgid"] != one["msgid"]


@pytest.mark.parametrize(
    ("title", "data", "errcode"),
    [
        (
            "预约成功通知",
            {
                "thing1": "口腔检查",
                "time2": "2024年1月5日 14:00",
                "character_string3": "BK1",
                "amount4": "¥123456789012.50",
            },
            0,
        ),
        (
            "预约成功通知",
            {
                "thing1": "口腔检查",
                "time2": "2024年1月5日 14:00",
                "character_string3": "BK1",
                "amount4": "¥1234567890123",
            },
            47003,
        ),
        (
            "预约成功通知",
            {"thing1": "口" * 21, "time2": "2024年1月5日 14:00", "character_string3": "BK1", "amount4": "¥1"},
            47003,
        ),
        (
            "预约成功通知",
            {"thing1": "口腔检查", "time2": "", "character_string3": "BK1", "amount4": "¥1"},
            47003,
        ),
        ("账单状态提醒", {"thing1": "水费", "amount2": "¥56.30", "const3": "已缴费"}, 0),
        ("账单状态提醒", {"thing1": "水费", "amount2": "¥56.30", "const3": ""}, 0),
        ("账单状态提醒", {"thing1": "水费", "amount2": "¥56.30", "const3": "随便写"}, 47003),
        ("订单发货通知", {"keyword1": "A1"}, 0),  # classic keys are free text and may be left out
    ],
)
def test_the_oa_value_rules(sandbox, title, data, errcode):
    token = oa_token(sandbox)
    following = sandbox_followers(sandbox, subscribed=True)[0]["openid"]
    answer = _send(sandbox, token, following, templates(sandbox, token)[title], data)
    assert answer["errcode"] == errcode, answer


def test_a_delivered_send_pushes_templatesendjobfinish_and_follows_push_events(sandbox, receiver):
    oa_post(sandbox, "/push-config", {"OA_PUSH_URL": receiver.url, "OA_PUSH_FORMAT": "json"})
    token = oa_token(sandbox)
    follower = sandbox_followers(sandbox, subscribed=True)[0]
    sent = _send(sandbox, token, follower["openid"], templates(sandbox, token)["订单发货通知"], ORDER)
    pushed = receiver.get()
    body = json.loads(pushed["body"])
    assert body["Event"] == "TEMPLATESENDJOBFINISH" and body["FromUserName"] == follower["openid"]
    assert body["MsgID"] == str(sent["msgid"]) and body["Status"] == "success" and "List" not in body
    oa_post(sandbox, f"/users/{follower['mp_openid']}/unfollow")
    body = json.loads(receiver.get()["body"])
    assert (body["Event"], body["FromUserName"]) == ("unsubscribe", follower["openid"])
    assert (
        _send(sandbox, token, follower["openid"], templates(sandbox, token)["订单发货通知"], ORDER)["errcode"]
        == 43004
    )
    assert oa_post(sandbox, f"/users/{follower['openid']}/unfollow")["changed"] is False  # nothing to push
    oa_post(sandbox, f"/users/{follower['openid']}/follow")
    body = json.loads(receiver.get()["body"])
    assert body["Event"] == "subscribe"


def test_oa_pushes_are_xml_and_encrypted_for_the_oas_appid_in_secure_mode(sandbox, receiver):
    key = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
    oa_post(
        sandbox,
        "/push-config",
        {"OA_PUSH_URL": receiver.url, "OA_PUSH_MODE": "secure", "OA_PUSH_AES_KEY": key},
    )
    follower = sandbox_followers(sandbox, subscribed=False)[0]
    oa_post(sandbox, f"/users/{follower['openid']}/follow")
    pushed = receiver.get()
    assert pushed["query"]["encrypt_type"] == "aes"
    encrypted = ET.fromstring(pushed["body"]).findtext("Encrypt")  # noqa: S314
    message, appid = decrypt(key, encrypted)
    assert appid == sandbox.state()["oa"]["appid"]
    root = ET.fromstring(message)  # noqa: S314
    assert (root.findtext("Event"), root.findtext("FromUserName")) == ("subscribe", follower["openid"])


def test_the_human_page_has_follow_and_unfollow_buttons(sandbox, receiver):
    oa_post(sandbox, "/push-config", {"OA_PUSH_URL": receiver.url})
    follower = sandbox_followers(sandbox, subscribed=True)[0]
    page = requests.get(
        f"{sandbox.url}/sandbox/", params={"openid": follower["mp_openid"]}, timeout=TIMEOUT
    ).text
    assert "取消关注 unfollow" in page and follower["openid"] in page
    response = requests.post(
        f"{sandbox.url}/sandbox/users/{follower['mp_openid']}/follow", data={"follow": "0"}, timeout=TIMEOUT
    )
    assert response.status_code == 200 and "关注公众号 follow" in response.text
    assert ET.fromstring(receiver.get()["body"]).findtext("Event") == "unsubscribe"  # noqa: S314
    assert not next(f for f in sandbox_followers(sandbox) if f["openid"] == follower["openid"])["subscribed"]
