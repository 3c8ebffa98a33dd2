"""WeChat-style reply bodies: ``{"errcode": N, "errmsg": "<text> rid: <hex>"}``.

The texts imitate what the real API says; clients must key on ``errcode`` only, never on the text.
"""

from __future__ import annotations

import secrets
from typing import Any

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    41008: "missing code",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40165: "invalid weapp pagepath",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41030: "invalid page",
    42001: "access_token expired",
    43002: "require POST method",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    43108: "concurrent send to the same user, please retry later",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    47003: "argument invalid!",
    48006: "forbid to clear quota because of reaching the limit",
    76021: "cgi_path not found, please check",
    76022: "could not use this cgi_path, no permission",
    20001: "system error",
    20002: "invalid parameter",
    200012: "private template count reach limit",
    200014: "tid does not exist",
    200016: "invalid start",
    200017: "invalid limit",
    200018: "missing ids",
    200019: "invalid ids",
    200020: "invalid kidList",
    200021: "invalid sceneDesc",
}


def new_rid() -> str:
    """A request id shaped like WeChat's (three dash-separated hex groups)."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def wx_error(code: int, text: str | None = None) -> dict[str, Any]:
    """Error body for ``code``; ``text`` overrides the standard message (e.g. 47003 naming the key)."""
    return {"errcode": code, "errmsg": f"{text or ERRMSG.get(code, 'error')} rid: {new_rid()}"}


def wx_ok(**fields: Any) -> dict[str, Any]:
    """Success body of a business API: ``errcode`` 0, ``errmsg`` "ok", plus ``fields``."""
    return {"errcode": 0, "errmsg": "ok", **fields}
