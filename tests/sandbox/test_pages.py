"""The human page /sandbox/: renders, lists users, and its buttons act like the WeChat popup."""

from __future__ import annotations

import re

import requests

from .helpers import TIMEOUT, VALID_DATA, credits, first_user, send, template_by_title, token


def test_users_page_lists_users_and_paginates(make_sandbox):
    sb = make_sandbox(USERS=120)
    page = requests.get(sb.url + "/sandbox/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert "微信沙箱" in page.text and "WeChat sandbox" in page.text
    assert page.text.count("/sandbox/?openid=") == 50
    assert "1 / 3" in page.text
    last = requests.get(sb.url + "/sandbox/", params={"page": 3}, timeout=TIMEOUT)
    assert last.text.count("/sandbox/?openid=") == 20
    openid = first_user(sb.url)
    found = requests.get(sb.url + "/sandbox/", params={"q": openid[:12]}, timeout=TIMEOUT)
    assert openid in found.text


def test_accept_button_grants_a_credit(sandbox):
    openid = first_user(sandbox.url)
    order = template_by_title(sandbox.url, token(sandbox.url), "订单发货提醒")["priTmplId"]
    page = requests.get(sandbox.url + "/sandbox/", params={"openid": openid}, timeout=TIMEOUT)
    assert "允许 accept" in page.text and "拒绝 reject" in page.text and "关闭 turn off" in page.text
    action = re.search(r'action="([^"]+/answer)"', page.text)
    assert action is not None
    with requests.Session() as session:
        reply = session.post(
            sandbox.url + action.group(1),
            data={"template_id": order, "status": "accept"},
            timeout=TIMEOUT,
        )
        assert reply.status_code == 200
        assert reply.url.startswith(sandbox.url + "/sandbox/?openid=")
        assert "requestSubscribeMessage:ok" in reply.text
    assert credits(sandbox.url, openid, order)["credits"] == 1
    reply = send(
        sandbox.url, token(sandbox.url), touser=openid, template_id=order, data=VALID_DATA["订单发货提醒"]
    )
    page = requests.get(sandbox.url + "/sandbox/", params={"openid": openid}, timeout=TIMEOUT)
    assert str(reply["msgid"]) in page.text
    assert "剩余 <strong>0</strong> 次" in page.text
    off = requests.post(
        f"{sandbox.url}/sandbox/users/{openid}/turn-off", data={"template_id": order}, timeout=TIMEOUT
    )
    assert off.status_code == 200
    assert credits(sandbox.url, openid, order)["credits"] == 0


def test_root_redirects_to_the_page(sandbox):
    reply = requests.get(sandbox.url + "/", timeout=TIMEOUT)
    assert reply.url == sandbox.url + "/sandbox/"
