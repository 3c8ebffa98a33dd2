"""Small HTTP helpers for driving the sandbox like a WeChat client would."""

from __future__ import annotations

from typing import Any

import requests

APPID = "wxsandbox000000000"
SECRET = "sandbox-secret"
TIMEOUT = 5


def stable_token(
    url: str, *, force: bool = False, appid: str = APPID, secret: str = SECRET
) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force}
    return requests.post(url + "/cgi-bin/stable_token", json=body, timeout=TIMEOUT).json()


def legacy_token(url: str, *, appid: str = APPID, secret: str = SECRET) -> dict[str, Any]:
    params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    return requests.get(url + "/cgi-bin/token", params=params, timeout=TIMEOUT).json()


def token(url: str) -> str:
    return stable_token(url)["access_token"]


def send(url: str, access_token: str, **body: Any) -> dict[str, Any]:
    return requests.post(
        url + "/cgi-bin/message/subscribe/send",
        params={"access_token": access_token},
        json=body,
        timeout=TIMEOUT,
    ).json()


def get_templates(url: str, access_token: str) -> list[dict[str, Any]]:
    reply = requests.get(
        url + "/wxaapi/newtmpl/gettemplate", params={"access_token": access_token}, timeout=TIMEOUT
    )
    return reply.json()["data"]


def template_by_title(url: str, access_token: str, title: str) -> dict[str, Any]:
    return next(t for t in get_templates(url, access_token) if t["title"] == title)


def first_user(url: str) -> str:
    return requests.get(url + "/sandbox/api/users", timeout=TIMEOUT).json()["users"][0]["openid"]


def prompt(url: str, openid: str, answers: dict[str, str], scene: int = 0) -> requests.Response:
    return requests.post(
        f"{url}/sandbox/api/users/{openid}/prompt",
        json={"templates": answers, "scene": scene},
        timeout=TIMEOUT,
    )


def set_faults(url: str, **faults: Any) -> dict[str, Any]:
    reply = requests.post(url + "/sandbox/api/faults", json=faults, timeout=TIMEOUT)
    reply.raise_for_status()
    return reply.json()["faults"]


def messages(url: str, **filters: str) -> list[dict[str, Any]]:
    return requests.get(url + "/sandbox/api/messages", params=filters, timeout=TIMEOUT).json()["messages"]


def credits(url: str, openid: str, template_id: str) -> dict[str, Any]:
    params = {"openid": openid, "template_id": template_id}
    rows = requests.get(url + "/sandbox/api/credits", params=params, timeout=TIMEOUT).json()["credits"]
    return rows[0] if rows else {"credits": 0, "active": False}


# Valid data for the seeded templates, keyed by title.
VALID_DATA: dict[str, dict[str, dict[str, str]]] = {
    "订单发货提醒": {
        "character_string1": {"value": "A20240101001"},
        "thing2": {"value": "咖啡豆"},
        "phrase3": {"value": "已发货"},
        "date4": {"value": "2024-01-01 12:00"},
    },
    "会议提醒": {
        "thing1": {"value": "周会"},
        "time2": {"value": "2024年1月8日 09:30"},
        "thing3": {"value": "三楼会议室"},
    },
}
