"""The app pointed at the sandbox's linked Official Account, and reading that OA and Tongzhi's follower
table, for the OA tests and every other test that turns the OA channel on."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models.oa import OaFollower
from tests.api.live import sandbox_overrides

TIMEOUT = 10
OA_PUSH_TOKEN = "oa-push-token-for-tests"
OA_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"  # 43 characters
OA_SECRET = "sandbox-oa-secret-for-tests"


def oa_sandbox_config(**settings: Any) -> dict[str, Any]:
    """A ``sandbox_config`` whose linked Official Account has a unique AppID (nothing keyed by it leaks
    between tests) and the AppSecret ``OA_SECRET``, with 20 mini-program users; ``settings`` add to or
    replace these."""
    return {"OA_APPID": f"wxo{uuid.uuid4().hex[:15]}", "OA_SECRET": OA_SECRET, "USERS": 20, **settings}


def oa_overrides(sandbox, **extra: Any) -> dict[str, Any]:
    """The app's settings for the sandbox's linked Official Account (its AppID and AppSecret), and ``extra``;
    a ``config_overrides`` adds them to the mini-program's."""
    config = sandbox.server.state.config
    return {"WECHAT_OA_APPID": config["OA_APPID"], "WECHAT_OA_SECRET": config["OA_SECRET"], **extra}


def oa_push_overrides(sandbox) -> dict[str, Any]:
    """The OA tests' ``config_overrides``: the mini-program on the sandbox (``sandbox_overrides``), its
    linked Official Account, and the OA's pushes in plain text signed with ``OA_PUSH_TOKEN``."""
    return {
        **sandbox_overrides(sandbox),
        **oa_overrides(sandbox, WECHAT_OA_PUSH_TOKEN=OA_PUSH_TOKEN, WECHAT_OA_PUSH_AES_KEY=None),
    }


def oa_get(sandbox, path: str, **params: Any) -> Any:
    response = requests.get(f"{sandbox.url}/sandbox/api/oa{path}", params=params, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def oa_post(sandbox, path: str, body: Any = None) -> Any:
    response = requests.post(f"{sandbox.url}/sandbox/api/oa{path}", json=body or {}, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def sandbox_followers(sandbox, subscribed: bool | None = None) -> list[dict[str, Any]]:
    rows = oa_get(sandbox, "/followers")["followers"]
    return [r for r in rows if subscribed is None or r["subscribed"] == subscribed]


def oa_token(sandbox) -> str:
    config = sandbox.server.state.config
    body = {"grant_type": "client_credential", "appid": config["OA_APPID"], "secret": config["OA_SECRET"]}
    reply = requests.post(f"{sandbox.url}/cgi-bin/stable_token", json=body, timeout=TIMEOUT).json()
    return reply["access_token"]


def followers_in_db(app) -> dict[str, OaFollower]:
    with app.app_context():
        rows = db.session.scalars(select(OaFollower)).all()
        for row in rows:
            db.session.expunge(row)
        return {row.openid: row for row in rows}


# Values for the sandbox's 订单发货通知 (first / keyword1-3 / remark) that fit the Official Account's rules.
SHIPPED_VALUES = {
    "first": "您的订单已发货",
    "keyword1": "A20240101001",
    "keyword2": "云南小粒咖啡豆 500g",
    "keyword3": "2024年1月1日 12:00",
    "remark": "点击查看物流详情",
}
