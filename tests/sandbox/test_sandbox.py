"""The sandbox over real HTTP: tokens, login, sending with its grant ledger, and injected faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from .helpers import (
    APPID,
    SECRET,
    TIMEOUT,
    VALID_DATA,
    credits,
    first_user,
    legacy_token,
    messages,
    prompt,
    send,
    set_faults,
    stable_token,
    template_by_title,
    token,
)

# -- tokens -------------------------------------------------------------------------------------------------


def test_stable_token_normal_mode_returns_the_same_token_with_decreasing_expires_in(sandbox):
    first = stable_token(sandbox.url)
    assert first["expires_in"] == 7200
    time.sleep(1.1)
    second = stable_token(sandbox.url)
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] < first["expires_in"]
    assert requests.get(sandbox.url + "/sandbox/api/state", timeout=TIMEOUT).json()["token_fetches"] == {
        "stable": 1,
        "legacy": 0,
    }


def test_stable_token_force_refresh_rotates_at_once_and_is_rate_limited(sandbox):
    old = token(sandbox.url)
    forced = stable_token(sandbox.url, force=True)
    assert forced["access_token"] != old
    assert send(sandbox.url, old, touser="x")["errcode"] == 40001
    assert stable_token(sandbox.url, force=True)["errcode"] == 45011  # < 30 s since the last force


def test_expired_tokens_answer_42001_and_normal_mode_then_issues_a_new_one(make_sandbox):
    sb = make_sandbox(TOKEN_TTL=0.6)
    first = token(sb.url)
    time.sleep(0.7)
    assert send(sb.url, first, touser="x")["errcode"] == 42001
    assert token(sb.url) != first


def test_token_api_checks_appid_and_secret(sandbox):
    assert stable_token(sandbox.url, appid="wxother")["errcode"] == 40013
    assert stable_token(sandbox.url, secret="wrong")["errcode"] == 40125
    assert legacy_token(sandbox.url, secret="wrong")["errcode"] == 40001
    assert legacy_token(sandbox.url, appid="wxother")["errcode"] == 40013
    reply = requests.get(sandbox.url + "/cgi-bin/stable_token", timeout=TIMEOUT).json()
    assert reply["errcode"] == 43002
    assert " rid: " in reply["errmsg"]


def test_legacy_token_rotates_and_the_old_one_dies_after_the_overlap(make_sandbox):
    sb = make_sandbox(TOKEN_OVERLAP=0.5)
    stable = token(sb.url)
    first = legacy_token(sb.url)["access_token"]
    second = legacy_token(sb.url)["access_token"]
    assert first != second
    # Within the overlap both work (the user is unknown, so 40003 means "token accepted").
    assert send(sb.url, first, touser="nobody")["errcode"] == 40003
    time.sleep(0.6)
    assert send(sb.url, first, touser="nobody")["errcode"] == 40001
    assert send(sb.url, second, touser="nobody")["errcode"] == 40003
    # Legacy rotation never touches the stable token.
    assert send(sb.url, stable, touser="nobody")["errcode"] == 40003
    fetches = requests.get(sb.url + "/sandbox/api/state", timeout=TIMEOUT).json()["token_fetches"]
    assert fetches == {"stable": 1, "legacy": 2}


def test_business_apis_answer_41001_without_token_and_40014_for_garbage(sandbox):
    url = sandbox.url + "/wxaapi/newtmpl/gettemplate"
    assert requests.get(url, timeout=TIMEOUT).json()["errcode"] == 41001
    assert requests.get(url, params={"access_token": "garbage"}, timeout=TIMEOUT).json()["errcode"] == 40014


# -- login --------------------------------------------------------------------------------------------------


def _code(url: str, openid: str) -> str:
    return requests.post(f"{url}/sandbox/api/users/{openid}/login-code", timeout=TIMEOUT).json()["code"]


def _session(url: str, code: str) -> dict[str, Any]:
    params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    return requests.get(url + "/sns/jscode2session", params=params, timeout=TIMEOUT).json()


def test_jscode2session_codes_are_single_use(sandbox):
    users = requests.get(sandbox.url + "/sandbox/api/users", timeout=TIMEOUT).json()["users"]
    with_union = next(u for u in users if u["unionid"])
    without_union = next(u for u in users if not u["unionid"])
    reply = _session(sandbox.url, code := _code(sandbox.url, with_union["openid"]))
    assert reply["openid"] == with_union["openid"]
    assert reply["unionid"] == with_union["unionid"]
    assert reply["session_key"]
    assert _session(sandbox.url, code)["errcode"] == 40029
    assert "unionid" not in _session(sandbox.url, _code(sandbox.url, without_union["openid"]))
    assert _session(sandbox.url, "made-up")["errcode"] == 40029


def test_jscode2session_codes_expire(make_sandbox):
    sb = make_sandbox(CODE_TTL=0.3)
    code = _code(sb.url, first_user(sb.url))
    time.sleep(0.4)
    assert _session(sb.url, code)["errcode"] == 40029


def test_about_half_of_the_seeded_users_have_a_unionid(sandbox):
    users = requests.get(sandbox.url + "/sandbox/api/users", timeout=TIMEOUT).json()["users"]
    assert len(users) == 20
    assert sum(1 for u in users if u["unionid"]) == 10


# -- sending ------------------------------------------------------------------------------------------------


@pytest.fixture
def world(sandbox) -> dict[str, Any]:
    """A token, a user, the one-time 订单发货提醒 and the long-term 会议提醒 templates."""
    access_token = token(sandbox.url)
    return {
        "url": sandbox.url,
        "token": access_token,
        "openid": first_user(sandbox.url),
        "one_time": template_by_title(sandbox.url, access_token, "订单发货提醒")["priTmplId"],
        "long_term": template_by_title(sandbox.url, access_token, "会议提醒")["priTmplId"],
    }


def _send_order(world: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "touser": world["openid"],
        "template_id": world["one_time"],
        "page": "pages/order/detail?id=42",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "data": VALID_DATA["订单发货提醒"],
        **overrides,
    }
    return send(world["url"], world["token"], **body)


def test_three_accepts_allow_exactly_three_sends(world):
    for _ in range(3):
        reply = prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
        assert reply.json() == {"errMsg": "requestSubscribeMessage:ok", world["one_time"]: "accept"}
    replies = [_send_order(world) for _ in range(4)]
    assert [r["errcode"] for r in replies] == [0, 0, 0, 43101]
    assert replies[0]["errmsg"] == "ok"
    msgids = [r["msgid"] for r in replies[:3]]
    assert len(set(msgids)) == 3
    assert all(isinstance(m, int) and 0 < m < 2**63 for m in msgids)
    assert credits(world["url"], world["openid"], world["one_time"])["credits"] == 0
    log = messages(world["url"], openid=world["openid"], template_id=world["one_time"])
    assert [m["errcode"] for m in log] == [0, 0, 0, 43101]
    assert log[0]["page"] == "pages/order/detail?id=42"
    assert log[0]["data"] == VALID_DATA["订单发货提醒"]
    assert log[0]["miniprogram_state"] == "formal"
    assert log[0]["lang"] == "zh_CN"


def test_reject_on_a_one_time_template_grants_nothing(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "reject"})
    assert _send_order(world)["errcode"] == 43101


def test_long_term_template_allows_repeated_sends_until_turned_off(world):
    prompt(world["url"], world["openid"], {world["long_term"]: "accept"})
    body = {"touser": world["openid"], "template_id": world["long_term"], "data": VALID_DATA["会议提醒"]}
    assert [send(world["url"], world["token"], **body)["errcode"] for _ in range(3)] == [0, 0, 0]
    off = requests.post(
        f"{world['url']}/sandbox/api/users/{world['openid']}/turn-off",
        json={"template_id": world["long_term"]},
        timeout=TIMEOUT,
    )
    assert off.status_code == 200
    assert send(world["url"], world["token"], **body)["errcode"] == 43101


def test_turn_off_zeroes_one_time_credits(world):
    for _ in range(2):
        prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    requests.post(
        f"{world['url']}/sandbox/api/users/{world['openid']}/turn-off",
        json={"template_id": world["one_time"]},
        timeout=TIMEOUT,
    )
    assert credits(world["url"], world["openid"], world["one_time"])["credits"] == 0
    assert _send_order(world)["errcode"] == 43101


def test_send_checks_recipient_template_and_page(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    assert _send_order(world, touser="o-not-a-user")["errcode"] == 40003
    assert _send_order(world, template_id="no-such-template")["errcode"] == 40037
    assert _send_order(world, page="pages/nowhere/index")["errcode"] == 41030
    assert _send_order(world, miniprogram_state="beta")["errcode"] == 47003
    # None of the refused sends spent the credit.
    assert _send_order(world, page="pages/index/index")["errcode"] == 0


def test_send_names_the_offending_key(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    data = {**VALID_DATA["订单发货提醒"], "thing2": {"value": "一" * 21}}
    reply = _send_order(world, data=data)
    assert reply["errcode"] == 47003
    assert reply["errmsg"].startswith("argument invalid! data.thing2.value invalid rid: ")
    data = {k: v for k, v in VALID_DATA["订单发货提醒"].items() if k != "phrase3"}
    reply = _send_order(world, data=data)
    assert reply["errmsg"].startswith("argument invalid! data.phrase3.value is empty rid: ")
    data = {**VALID_DATA["订单发货提醒"], "character_string1": {"value": "订单A1"}}
    assert "data.character_string1.value invalid" in _send_order(world, data=data)["errmsg"]
    assert _send_order(world)["errcode"] == 0


def test_data_is_judged_before_the_grant(world):
    data = {**VALID_DATA["订单发货提醒"], "date4": {"value": "2024-13-01"}}
    assert _send_order(world, data=data)["errcode"] == 47003
    assert _send_order(world)["errcode"] == 43101


def test_concurrent_sends_to_one_user_answer_43108(world):
    set_faults(world["url"], LATENCY_MS=300)
    prompt(world["url"], world["openid"], {world["long_term"]: "accept"})
    body = {"touser": world["openid"], "template_id": world["long_term"], "data": VALID_DATA["会议提醒"]}
    results: list[int] = []

    def worker() -> None:
        results.append(send(world["url"], world["token"], **body)["errcode"])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert sorted(results) == [0, 43108]
    # Sequential sends are fine again.
    assert send(world["url"], world["token"], **body)["errcode"] == 0


def test_concurrency_window_keeps_a_user_busy_after_a_send(world):
    set_faults(world["url"], CONCURRENCY_WINDOW_MS=400)
    prompt(world["url"], world["openid"], {world["long_term"]: "accept"})
    body = {"touser": world["openid"], "template_id": world["long_term"], "data": VALID_DATA["会议提醒"]}
    assert send(world["url"], world["token"], **body)["errcode"] == 0
    assert send(world["url"], world["token"], **body)["errcode"] == 43108
    time.sleep(0.45)
    assert send(world["url"], world["token"], **body)["errcode"] == 0


def test_error_rate_answers_system_busy_without_spending_credit(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    set_faults(world["url"], ERROR_RATE=1)
    reply = _send_order(world)
    assert reply["errcode"] == -1
    assert reply["errmsg"].startswith("system error rid: ")
    set_faults(world["url"], ERROR_RATE=0)
    assert _send_order(world)["errcode"] == 0


def test_quota_after_answers_45009_until_cleared(world):
    prompt(world["url"], world["openid"], {world["long_term"]: "accept"})
    set_faults(world["url"], QUOTA_AFTER=2)
    body = {"touser": world["openid"], "template_id": world["long_term"], "data": VALID_DATA["会议提醒"]}
    assert [send(world["url"], world["token"], **body)["errcode"] for _ in range(3)] == [0, 0, 45009]
    quota = requests.post(
        world["url"] + "/cgi-bin/openapi/quota/get",
        params={"access_token": world["token"]},
        json={"cgi_path": "/cgi-bin/message/subscribe/send"},
        timeout=TIMEOUT,
    ).json()
    assert quota == {"errcode": 0, "errmsg": "ok", "quota": {"daily_limit": 2, "used": 2, "remain": 0}}
    cleared = requests.post(
        world["url"] + "/cgi-bin/clear_quota",
        params={"access_token": world["token"]},
        json={"appid": APPID},
        timeout=TIMEOUT,
    )
    assert cleared.json()["errcode"] == 0
    assert send(world["url"], world["token"], **body)["errcode"] == 0


def test_quota_get_refuses_unknown_and_sns_paths(world):
    def quota(path: str) -> int:
        return requests.post(
            world["url"] + "/cgi-bin/openapi/quota/get",
            params={"access_token": world["token"]},
            json={"cgi_path": path},
            timeout=TIMEOUT,
        ).json()["errcode"]

    assert quota("/cgi-bin/nope") == 76021
    assert quota("/sns/jscode2session") == 76022


def test_dropped_connection_still_delivers_and_spends_the_credit(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    set_faults(world["url"], DROP_AFTER_READ_RATE=1)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        _send_order(world)
    set_faults(world["url"], DROP_AFTER_READ_RATE=0)
    [record] = messages(world["url"], openid=world["openid"])
    assert record["errcode"] == 0
    assert record["msgid"]
    assert record["dropped"] is True
    assert credits(world["url"], world["openid"], world["one_time"])["credits"] == 0
    # The retry a careless client would make now fails: the credit is gone.
    assert _send_order(world)["errcode"] == 43101


def test_faults_endpoint_rejects_unknown_keys(sandbox):
    reply = requests.post(sandbox.url + "/sandbox/api/faults", json={"NOPE": 1}, timeout=TIMEOUT)
    assert reply.status_code == 400
    reply = requests.post(sandbox.url + "/sandbox/api/faults", json={"ERROR_RATE": 2}, timeout=TIMEOUT)
    assert reply.status_code == 400


# -- prompts, users, reset ----------------------------------------------------------------------------------


def test_prompt_refuses_what_wx_request_subscribe_message_refuses(world):
    reply = prompt(world["url"], world["openid"], {"unknown": "accept"})
    assert reply.status_code == 400
    assert reply.json()["errCode"] == 20001
    reply = prompt(world["url"], world["openid"], {world["one_time"]: "accept", world["long_term"]: "accept"})
    assert reply.json()["errCode"] == 20002
    reply = prompt(world["url"], world["openid"], {})
    assert reply.json()["errCode"] == 10001
    assert prompt(world["url"], "o-unknown", {world["one_time"]: "accept"}).status_code == 404


def test_created_users_can_receive_messages(world):
    reply = requests.post(world["url"] + "/sandbox/api/users", json={"unionid": True}, timeout=TIMEOUT)
    assert reply.status_code == 201
    openid = reply.json()["openid"]
    assert reply.json()["unionid"]
    prompt(world["url"], openid, {world["one_time"]: "accept"})
    assert _send_order(world, touser=openid)["errcode"] == 0


def test_reset_restores_a_fresh_world_with_the_same_seeded_ids(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    assert _send_order(world)["errcode"] == 0
    assert requests.post(world["url"] + "/sandbox/api/reset", timeout=TIMEOUT).json() == {"ok": True}
    assert messages(world["url"]) == []
    assert first_user(world["url"]) == world["openid"]
    assert send(world["url"], world["token"], touser=world["openid"])["errcode"] == 40014
    assert (
        template_by_title(world["url"], token(world["url"]), "订单发货提醒")["priTmplId"] == world["one_time"]
    )


def test_template_changed_in_wechat_changes_what_send_accepts(world):
    prompt(world["url"], world["openid"], {world["one_time"]: "accept"})
    url = f"{world['url']}/sandbox/api/templates/{world['one_time']}"
    changed = requests.post(url, json={"content": "备注:{{thing9.DATA}}\n"}, timeout=TIMEOUT).json()
    assert changed["content"] == "备注:{{thing9.DATA}}\n"
    assert "data.thing9.value is empty" in _send_order(world)["errmsg"]
    assert requests.delete(url, timeout=TIMEOUT).status_code == 200
    assert _send_order(world)["errcode"] == 40037
